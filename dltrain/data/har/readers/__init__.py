"""Readers of the activity SOURCE layouts, one module each."""
