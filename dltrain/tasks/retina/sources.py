"""Retinopathy SOURCE layouts listed as labelled images, with the problems found on the way.

- Kaggle: a labels CSV (`trainLabels.csv`: `image,level`), images in `train/` or beside the CSV,
  unlabelled images in `test/`.
- Course: `train/<level>/*.jpeg` and optionally `validation/<level>/*.jpeg`.

A label without a file and a file without a label are rejects with a reason (a partly downloaded
Kaggle set is common, and the rest of it is still worth training on). A labels table that says
something wrong — a level that is not an integer 0-4, an image named twice — is an error naming the
row: training on what is left would quietly learn from a different set than the user thinks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dltrain.core.errors import DataError
from dltrain.tasks.retina.meta import LEVELS

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".tif", ".tiff"}
EYE_NAME = re.compile(r"^(?P<patient>.+)_(?P<eye>left|right)$", re.IGNORECASE)
COURSE_SPLITS = {"train": "train", "validation": "val", "valid": "val", "val": "val"}


@dataclass
class RetinaItem:
    name: str  # the image name without extension, as in trainLabels.csv and the submission
    path: Path
    level: int | None  # None: unlabelled (Kaggle test/)
    split: str | None = None  # fixed by the layout ("val" for the course's validation/), else None

    @property
    def patient(self) -> str:
        match = EYE_NAME.match(self.name)
        return match.group("patient") if match else self.name


@dataclass
class Reject:
    image: str
    reason: str
    split: str = ""  # "unlabelled" for a file of Kaggle's test/ (predict fills its row in), else ""


def image_files(folder: Path) -> dict[str, Path]:
    files = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                files.setdefault(path.stem, path)
    return files


def find_labels_csv(root: Path) -> Path | None:
    preferred = root / "trainLabels.csv"
    if preferred.is_file():
        return preferred
    candidates = sorted(path for path in root.glob("*.csv") if path.is_file())
    return candidates[0] if len(candidates) == 1 else None


def parse_level(value) -> int | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() and int(number) in LEVELS else None


def list_kaggle(root: Path, labels_csv: Path) -> tuple[list[RetinaItem], list[Reject]]:
    try:
        labels = pd.read_csv(labels_csv, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{labels_csv}: not a readable CSV ({str(error).splitlines()[0]})") from None
    labels.columns = [str(column).strip().lower() for column in labels.columns]
    missing = [column for column in ("image", "level") if column not in labels.columns]
    if missing:
        raise DataError(f"{labels_csv}: no {' and '.join(missing)} column (expected image,level as in trainLabels.csv)")
    image_folder = root / "train" if (root / "train").is_dir() else root
    files = image_files(image_folder)
    items, rejects = [], []
    seen: dict[str, int] = {}
    for row, (raw_name, raw_level) in enumerate(zip(labels["image"], labels["level"]), start=2):  # row 1: header
        name = str(raw_name).strip()
        name = Path(name).stem if Path(name).suffix.lower() in IMAGE_SUFFIXES else name
        level = parse_level(raw_level)
        if name in seen:
            raise DataError(
                f"{labels_csv}: image {name!r} is labelled twice (rows {seen[name]} and {row}); keep one row per image"
            )
        if level is None:
            raise DataError(
                f"{labels_csv} row {row}: level {raw_level!r} of {name!r} is not an integer 0-4; fix or remove the row"
            )
        if name not in files:
            rejects.append(Reject(name, "label without an image file"))
        else:
            items.append(RetinaItem(name, files[name], level))
        seen[name] = row
    rejects += [Reject(name, "image file without a label") for name in files if name not in seen]
    items += [RetinaItem(name, path, None, "unlabelled") for name, path in image_files(root / "test").items()]
    return items, rejects


def list_course(root: Path) -> tuple[list[RetinaItem], list[Reject]]:
    items, rejects = [], []
    for folder_name, split in COURSE_SPLITS.items():
        folder = root / folder_name
        if not folder.is_dir():
            continue
        for level_folder in sorted(child for child in folder.iterdir() if child.is_dir()):
            level = parse_level(level_folder.name)
            if level is None:
                raise DataError(f"{level_folder}: a level folder must be named 0-4; move its images or remove it")
            for name, path in image_files(level_folder).items():
                items.append(RetinaItem(name, path, level, None if split == "train" else split))
    items += [RetinaItem(name, path, None, "unlabelled") for name, path in image_files(root / "test").items()]
    return items, rejects


def list_retina_source(root: Path) -> tuple[list[RetinaItem], list[Reject], str]:
    """Items, rejects, and the layout's name."""
    if not root.exists():
        raise DataError(f"{root}: no such folder (SOURCE is 'demo', a Kaggle-layout folder or a course-layout folder)")
    if not root.is_dir():
        raise DataError(f"{root} is a file; SOURCE must be a folder")
    labels_csv = find_labels_csv(root)
    if labels_csv is not None:
        items, rejects = list_kaggle(root, labels_csv)
        layout = "kaggle"
    elif any((root / name).is_dir() for name in COURSE_SPLITS):
        items, rejects = list_course(root)
        layout = "course"
    else:
        raise DataError(
            f"{root}: neither a Kaggle layout (trainLabels.csv + train/) nor a course layout (train/<level>/*.jpeg)"
        )
    duplicates = sorted(_duplicate_names(items))
    if duplicates:
        paths = [str(item.path) for item in items if item.name == duplicates[0]]
        raise DataError(
            f"{root}: {len(duplicates)} image name(s) occur more than once, e.g. {duplicates[0]!r} "
            f"({', '.join(paths)}); "
            f"predictions and splits go by name, so rename or remove the copies"
        )
    if not any(item.level is not None for item in items):
        raise DataError(f"{root}: no labelled image found ({len(rejects)} rejected)")
    return items, rejects, layout


def _duplicate_names(items: list[RetinaItem]) -> set[str]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.name] = counts.get(item.name, 0) + 1
    return {name for name, count in counts.items() if count > 1}
