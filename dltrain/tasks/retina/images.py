"""One fundus photograph -> a square, fundus-centred image of `size` pixels (the winners' recipe).

Decoding uses JPEG draft mode (DCT scaling), so a 5-megapixel photograph is decoded at the
smallest scale that still covers the requested size instead of at full resolution.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, UnidentifiedImageError

from dltrain.core.files import atomic_file
from dltrain.tasks.retina.meta import GRAHAM_BACKGROUND, ImageOptions

BORDER_MARGIN = 10  # o_O: the fundus is what is brighter than the border by this much
BLANK_MAXIMUM = 15  # an image whose brightest pixel is below this is treated as blank
MASK_RADIUS = 0.9  # Graham: keep the central 90% of the radius


class RejectedImage(Exception):
    """An image that cannot be used; the message is the reason written to rejects.csv."""


def decode(path, size: int) -> np.ndarray:
    """RGB uint8 array, decoded at the smallest JPEG scale not below `size` on either side."""
    try:
        if path.stat().st_size == 0:
            raise RejectedImage("empty file")
        # Pillow warns, then refuses, above its pixel limit (a decompression bomb, or a file that
        # would take gigabytes per worker): both are a reject reason here, never a warning.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.draft("RGB", (size, size))
                rgb = image.convert("RGB")  # forces the decode: truncated files fail here
    except RejectedImage:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise RejectedImage(f"too large: over Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} pixels") from None
    except UnidentifiedImageError:
        raise RejectedImage("not an image") from None
    except (OSError, SyntaxError, ValueError) as error:
        reason = "truncated" if "truncated" in str(error) else "unreadable"
        raise RejectedImage(f"{reason}: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    array = np.asarray(rgb)
    if array.max() < BLANK_MAXIMUM:
        raise RejectedImage("blank (all black)")
    return array


def fundus_box(array: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the pixels brighter than the border, or a centre square."""
    height, width = array.shape[:2]
    # The box is found on a grid of about 256 pixels across the short side: the same box to a few
    # pixels, at a small fraction of the cost of reading every pixel.
    stride = max(1, min(height, width) // 256)
    grid = array[::stride, ::stride]
    # The brightest channel of each pixel; np.maximum over the three planes is the same as
    # grid.max(axis=2) at a sixteenth of its cost (numpy reduces a short last axis slowly).
    intensity = np.maximum(np.maximum(grid[..., 0], grid[..., 1]), grid[..., 2]).astype(np.int16)
    border = np.concatenate([intensity[0], intensity[-1], intensity[:, 0], intensity[:, -1]])
    bright = intensity > np.median(border) + BORDER_MARGIN
    grid_height, grid_width = intensity.shape
    # A row or column belongs to the fundus when a few percent of it is bright; lone hot pixels
    # and text overlays do not stretch the box.
    rows = np.flatnonzero(bright.sum(axis=1) > 0.02 * grid_width)
    columns = np.flatnonzero(bright.sum(axis=0) > 0.02 * grid_height)
    if (
        len(rows) == 0
        or len(columns) == 0
        or (rows[-1] - rows[0]) < 0.25 * min(grid_height, grid_width)
        or (columns[-1] - columns[0]) < 0.25 * min(grid_height, grid_width)
    ):
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        return top, top + side, left, left + side
    return (
        int(rows[0]) * stride,
        min(height, (int(rows[-1]) + 1) * stride),
        int(columns[0]) * stride,
        min(width, (int(columns[-1]) + 1) * stride),
    )


def pad_to_square(array: np.ndarray) -> np.ndarray:
    height, width = array.shape[:2]
    side = max(height, width)
    square = np.zeros((side, side, 3), dtype=np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    square[top : top + height, left : left + width] = array
    return square


def graham_normalise(image: Image.Image) -> Image.Image:
    """4*img - 4*GaussianBlur(img, radius/30) + 128, then a circular mask at 0.9 of the radius."""
    radius = image.width / 2
    blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(radius / 30)), dtype=np.int16)
    normalised = np.clip(4 * np.asarray(image, dtype=np.int16) - 4 * blurred + 128, 0, 255).astype(np.uint8)
    mask = Image.new("L", image.size, 0)
    inset = radius * (1 - MASK_RADIUS)
    ImageDraw.Draw(mask).ellipse((inset, inset, image.width - inset, image.height - inset), fill=255)
    grey = int(GRAHAM_BACKGROUND)
    background = Image.new("RGB", image.size, (grey, grey, grey))
    return Image.composite(Image.fromarray(normalised), background, mask)


def save_jpeg_atomic(image: Image.Image, target, quality: int) -> None:
    with atomic_file(Path(target)) as partial:
        image.save(partial, format="JPEG", quality=quality)


def prepare_image(path, options: ImageOptions) -> Image.Image:
    array = decode(path, options.size)
    top, bottom, left, right = fundus_box(array)
    square = Image.fromarray(pad_to_square(array[top:bottom, left:right]))
    resized = square.resize((options.size, options.size), Image.Resampling.LANCZOS)
    return graham_normalise(resized) if options.graham else resized
