"""Diabetic-retinopathy grading data: fundus photographs to square, cropped, resized images."""
