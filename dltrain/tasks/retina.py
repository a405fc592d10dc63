"""`dltrain predict` for retinopathy: raw photographs or a prepared DATA_DIR -> Kaggle `image,level`."""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from dltrain.core.console import progress_bar
from dltrain.data.datadir import META_FILE
from dltrain.core.errors import DataError, UsageError
from dltrain.tasks.grading import DEFAULT_THRESHOLDS, grades_from_outputs
from dltrain.data.retina.images import ImageOptions, RejectedImage, prepare_image
from dltrain.data.retina.sources import IMAGE_SUFFIXES

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
    return paths


def _prepare_chunk(chunk: list[Path], options: ImageOptions) -> tuple[list[np.ndarray], list[str], list[tuple[str, str]]]:
    images, names, rejects = [], [], []
    for path in chunk:
        try:
            images.append(np.asarray(prepare_image(path, options)))
            names.append(path.stem)
        except RejectedImage as error:
            rejects.append((path.name, str(error)))
    return images, names, rejects


def prepared_chunks(paths: list[Path], options: ImageOptions, rejects: list[tuple[str, str]]) -> Iterator[tuple[list[np.ndarray], list[str], int]]:
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


def _image_shape(meta: dict) -> tuple[int, int, int]:
    size = meta["image_options"]["size"]
    return (size, size, 3)


def predict_retina(run, source: Path, split_name: str | None, tta: bool, load_model) -> pd.DataFrame:
    from dltrain.training.feeds import predict_outputs

    meta = run.data_meta
    head = run.config.model.head
    thresholds = run.provenance.get("thresholds") or DEFAULT_THRESHOLDS
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    names: list[str] = []
    grades: list[np.ndarray] = []
    if source.is_dir() and (source / META_FILE).is_file():
        from dltrain.inference.predict import prediction_split
        from dltrain.data.retina.pipeline import image_dataset, read_split_table

        table = read_split_table(source, prediction_split(source, meta, split_name))
        model = load_model(_image_shape(meta), f"the images of {source}")
        grades.append(grades_from_outputs(predict_outputs(model, image_dataset(source, table, 64), tta), head, thresholds))
        names = table["image"].tolist()
    else:
        if split_name is not None:
            raise UsageError("--split applies only when INPUT is a prepared DATA_DIR")
        options = ImageOptions(**meta["image_options"])
        paths = raw_image_paths(source)
        rejects: list[tuple[str, str]] = []
        model = load_model(_image_shape(meta), f"the images of {source}")
        import tensorflow as tf

        with progress_bar("grading photographs", len(paths)) as advance:
            for images, chunk_names, files_read in prepared_chunks(paths, options, rejects):
                if images:
                    stacked = np.stack(images).astype(np.float32)
                    dataset = tf.data.Dataset.from_tensor_slices((stacked, np.zeros(len(stacked)))).batch(64)
                    grades.append(grades_from_outputs(predict_outputs(model, dataset, tta), head, thresholds))
                    names += chunk_names
                advance(files_read)
        for name, reason in rejects:
            logger.warning("skipped %s: %s", name, reason)
        if not names:
            name, reason = rejects[0] if rejects else ("", "")
            raise DataError(f"{source}: none of the {len(paths)} image(s) could be read (first: {name}: {reason})")
    return pd.DataFrame({"image": names, "level": np.concatenate(grades).astype(int)})
