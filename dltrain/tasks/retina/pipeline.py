"""tf.data input pipelines over a prepared retina DATA_DIR, built to hold at 35k photographs x 512 px.

Training order is drawn per epoch from (seed, epoch) over the image *indices*: decoded images are
never shuffled, so memory does not grow with the data (with `none`, the first step starts at once;
`memory` and `disk` decode every image once first), and a resumed run sees exactly the batches it
would have seen. Decoded images are kept, as uint8 (a
quarter of float32's bytes, cast to float by the model), according to `train.cache`:

- `none`: every epoch reads and decodes the JPEGs (host memory flat in the number of images);
- `memory`: all images decoded once into memory, then served by index;
- `disk`: the same in a file under the run folder (memory-mapped; removed when the run completes);
- `auto`: memory when the decoded images take at most MEMORY_SHARE of the memory available, else none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.core.console import progress_bar
from dltrain.core.errors import DAMAGED_IMAGE_MARKER
from dltrain.data.feeds import own_share
from dltrain.tasks.retina.meta import IMAGES_FOLDER

logger = logging.getLogger("dltrain")
MEMORY_SHARE = 0.5  # auto: cache in memory when the decoded images take at most this share of available memory
DECODED_FILE = "decoded-images.u8"  # train.cache=disk: the decoded images, in the run folder while it trains
DECODE_CHUNK = 256
LOOKUP_PARALLEL_BATCHES = 2  # cached batches gathered at once: one being used, one ready


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable), as the kernel counts it."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


@dataclass
class CacheChoice:
    requested: str
    mode: str  # memory, disk or none
    bytes: int  # of the decoded images
    available: int

    def describe(self) -> dict:
        return {
            "requested": self.requested,
            "mode": self.mode,
            "decoded_bytes": self.bytes,
            "available_bytes": self.available,
        }


def choose_cache(requested: str, images: int, size: int) -> CacheChoice:
    needed = images * size * size * 3
    available = available_memory()
    mode = requested
    if requested == "auto":
        mode = "memory" if needed <= MEMORY_SHARE * available else "none"
    logger.info(
        "train.cache=%s: %s (decoded images %.2f GiB, %.1f GiB of memory available)",
        requested,
        mode,
        needed / 2**30,
        available / 2**30,
    )
    return CacheChoice(requested, mode, needed, available)


def image_paths(data_dir: Path, table: pd.DataFrame) -> list[str]:
    return [str(Path(data_dir) / IMAGES_FOLDER / f"{name}.jpeg") for name in table["image"]]


def _decode(path):
    """The JPEG at `path` as uint8 (height, width, 3). A file cut short (no end-of-image marker: every
    JPEG dltrain prepares ends with one) fails a check whose message names the file."""
    import tensorflow as tf

    contents = tf.io.read_file(path)
    ending = tf.strings.substr(contents, tf.maximum(tf.strings.length(contents) - 2, 0), 2)  # no copy of the file
    check = tf.debugging.Assert(tf.equal(ending, b"\xff\xd9"), [DAMAGED_IMAGE_MARKER, path])
    with tf.control_dependencies([check]):
        return tf.io.decode_jpeg(contents, channels=3)


def decoded_store(paths: list[str], size: int, mode: str, folder: Path) -> np.ndarray:
    """Every image decoded once, in order, into memory or a memory-mapped file of `folder`."""
    import tensorflow as tf

    shape = (len(paths), size, size, 3)
    if mode == "disk":
        store = np.lib.format.open_memmap(folder / DECODED_FILE, mode="w+", dtype=np.uint8, shape=shape)
    else:
        store = np.empty(shape, np.uint8)
    decoded = tf.data.Dataset.from_tensor_slices(paths).map(_decode, num_parallel_calls=tf.data.AUTOTUNE)
    start = 0
    with progress_bar(f"decoding images into {mode}", len(paths)) as advance:
        for chunk in decoded.batch(DECODE_CHUNK).prefetch(2):
            store[start : start + len(chunk)] = chunk.numpy()
            start += len(chunk)
            advance(len(chunk))
    return store


@dataclass
class ImageFeed:
    """A split of photographs with its targets, ready to become batches."""

    paths: list[str]
    targets: np.ndarray
    size: int
    store: np.ndarray | None = None  # decoded images (memory or disk cache), or None: decode every time

    def _lookup(self, rows):
        import tensorflow as tf

        store = self.store
        images = tf.numpy_function(lambda indices: store[np.asarray(indices)], [rows], tf.uint8, stateful=False)
        images.set_shape([None, self.size, self.size, 3])
        return images

    def _decode_one(self, path):
        import tensorflow as tf

        return tf.ensure_shape(_decode(path), [self.size, self.size, 3])

    def batches(self, batch_size: int, indices=None, drop_remainder: bool = False, shard=None):
        """(uint8 images in 0-255, target) batches of the images `indices` names (a dataset of indices,
        e.g. one epoch's order), or of every image in file order. Images stay uint8 up to the model, which
        casts them where it computes: every buffer, and the copy to an accelerator, a quarter of float32's.
        With `shard` (process id, processes), this process's rows of every global batch: chosen among the
        indices, so that a process decodes or looks up only its own images."""
        import tensorflow as tf

        indices = indices if indices is not None else tf.data.Dataset.range(len(self.paths))
        targets, files = tf.constant(self.targets), tf.constant(self.paths)
        rows = own_share(indices.batch(batch_size, drop_remainder), batch_size, shard)
        if self.store is not None:
            return rows.map(
                lambda rows: (self._lookup(rows), tf.gather(targets, rows)), num_parallel_calls=LOOKUP_PARALLEL_BATCHES
            )
        pairs = rows.unbatch().map(
            lambda index: (self._decode_one(tf.gather(files, index)), tf.gather(targets, index)),
            num_parallel_calls=tf.data.AUTOTUNE,  # one photograph each: few in flight whatever autotune picks
        )
        batched = pairs.batch(batch_size // shard[1] if shard else batch_size, drop_remainder)  # the same rows
        if rows.cardinality() >= 0:  # unbatch forgets how many batches there are; Keras wants to know
            batched = batched.apply(tf.data.experimental.assert_cardinality(rows.cardinality()))
        return batched
