"""Raw photographs for `predict`: listed, then prepared in chunks in background threads exactly as
`prepare retina` prepares them, while the model scores the chunk before."""

from __future__ import annotations

import logging
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dltrain.core.console import progress_bar
from dltrain.core.errors import DataError
from dltrain.tasks.retina.images import RejectedImage, prepare_image
from dltrain.tasks.retina.meta import ImageOptions
from dltrain.tasks.retina.sources import IMAGE_SUFFIXES

logger = logging.getLogger("dltrain")

CHUNK = 128  # photographs prepared and scored at a time: memory stays flat on 53,576 test images
LOOK_AHEAD = 2  # chunks prepared ahead of the one being scored
PREPARE_THREADS = 2


def raw_image_paths(source: Path) -> list[Path]:
    if source.is_file():
        if source.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"{source}: not an image file ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return [source]
    paths = sorted(path for path in source.rglob("*") if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"{source}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    seen: dict[str, Path] = {}
    for path in paths:  # a submission has one row per image name
        if path.stem in seen:
            raise DataError(
                f"{source}: two photographs are named {path.stem!r} ({seen[path.stem]} and {path}); a submission "
                "has one row per name, so rename or remove one"
            )
        seen[path.stem] = path
    return paths


def _prepare_chunk(
    chunk: list[Path], options: ImageOptions
) -> tuple[list[np.ndarray], list[str], list[tuple[str, str]]]:
    images, names, rejects = [], [], []
    for path in chunk:
        try:
            images.append(np.asarray(prepare_image(path, options)))
            names.append(path.stem)
        except RejectedImage as error:
            rejects.append((path.name, str(error)))
    return images, names, rejects


def prepared_chunks(
    paths: list[Path], options: ImageOptions, rejects: list[tuple[str, str]]
) -> Iterator[tuple[list[np.ndarray], list[str], int]]:
    """Chunks of (images, names, files read), prepared exactly as `prepare retina` does;
    unusable files go to `rejects` instead. The next chunks are prepared in background threads
    (PIL decodes and resizes without the GIL) while the caller predicts the current one; at most
    LOOK_AHEAD chunks wait in memory."""
    chunks = [paths[start : start + CHUNK] for start in range(0, len(paths), CHUNK)]
    with ThreadPoolExecutor(max_workers=PREPARE_THREADS) as pool:
        pending = deque(pool.submit(_prepare_chunk, chunk, options) for chunk in chunks[:LOOK_AHEAD])
        for index, chunk in enumerate(chunks):
            images, names, chunk_rejects = pending.popleft().result()
            if index + LOOK_AHEAD < len(chunks):
                pending.append(pool.submit(_prepare_chunk, chunks[index + LOOK_AHEAD], options))
            rejects.extend(chunk_rejects)
            yield images, names, len(chunk)


def outputs_of_photographs(run, source: Path, request, predict_outputs, batch_size_for) -> tuple[list[str], np.ndarray]:
    """`predict`'s outputs for a folder of photographs (or one): one pass of the model over every
    photograph, prepared in background threads as `prepare` prepares them, fed through tf.data in batches
    of `batch_size_for(side)` to `predict_outputs(model, batches, tta)` while it scores the batches before."""
    import itertools

    import tensorflow as tf

    paths = raw_image_paths(source)
    what = "one photograph" if source.is_file() else f"a folder of {len(paths)} photograph(s)"
    logger.info(
        "INPUT %s: %s, prepared as the run's images were (%d px)", source, what, run.data_meta.image_options.size
    )
    model = request.load_model(tuple(run.data_meta.input_shape), f"the images of {source}")
    size, names = run.data_meta.image_options.size, []
    with progress_bar("grading photographs", len(paths)) as advance:

        def photographs():
            for images, chunk_names, files_read in prepared_chunks(paths, run.data_meta.image_options, request.rejects):
                names.extend(chunk_names)
                yield from images
                advance(files_read)

        stream = photographs()
        first = next(stream, None)  # read until one photograph is usable: none at all is said below
        if first is not None:
            signature = tf.TensorSpec((size, size, 3), tf.uint8)
            images = tf.data.Dataset.from_generator(
                lambda: itertools.chain([first], stream), output_signature=signature
            )
            batches = images.batch(batch_size_for(size)).map(
                lambda batch: (batch, tf.zeros(tf.shape(batch)[0]))  # uint8: the model casts where it computes
            )
            with warnings.catch_warnings():  # a stream of unknown length ends this way, by design
                warnings.filterwarnings("ignore", message="Your input ran out of data")
                outputs = predict_outputs(model, batches.prefetch(2), request.tta)
    for name, reason in request.rejects:
        logger.warning("unreadable %s (%s): its row is filled in", name, reason)
    if not names:
        name, reason = request.rejects[0] if request.rejects else ("", "")
        raise DataError(f"{source}: none of the {len(paths)} image(s) could be read (first: {name}: {reason})")
    return names, outputs
