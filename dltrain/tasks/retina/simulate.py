"""A *simulated* graded fundus set in the exact Kaggle layout, made from one real photograph.

The base is the real fundus photograph that scikit-image ships (`skimage/data/retina.jpg`,
1411x1411, a left eye; mirrored for right eyes). Lesions are drawn per grade, following the
clinical scale; then each image gets its own camera: rotation (sometimes inverted), exposure,
colour cast, blur, a Kaggle-like frame size and aspect ratio with black sides, and JPEG quality.

    0 none                1 a few microaneurysms
    2 more microaneurysms, dot/blot haemorrhages, hard exudates
    3 many haemorrhages in all four quadrants, flame haemorrhages, cotton-wool spots
    4 grade 3 plus new vessels and a pre-retinal haemorrhage

This is not clinical data: it exists so that every command can be run and tested without a
download. The real recipe is docs/kaggle-dr.md.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from dltrain.core.console import progress_bar
from dltrain.core.errors import DataError, UsageError
from dltrain.core.files import write_text_atomic
from dltrain.core.workers import worker_pool
from dltrain.tasks.retina.images import fundus_box, save_jpeg_atomic

logger = logging.getLogger("dltrain")

GRADE_MIXES = {
    "kaggle": (0.735, 0.070, 0.151, 0.025, 0.020),  # the shares of Kaggle's 35,126 training images
    "balanced": (0.2, 0.2, 0.2, 0.2, 0.2),
}
# (width, height) of Kaggle-like camera frames, 1.2 to 5 megapixels, mostly wider than tall.
FRAMES = ((2592, 1944), (2304, 1536), (2048, 1536), (1792, 1200), (1536, 1024), (1280, 960), (1400, 1400))


@lru_cache(maxsize=1)
def base_photograph() -> tuple[np.ndarray, tuple[float, float, float]]:
    """The real photograph as RGB, with its fundus centre (x, y) and radius in pixels."""
    try:
        distribution = importlib.metadata.distribution("scikit-image")
    except importlib.metadata.PackageNotFoundError:
        raise DataError(
            "the retina demo set needs scikit-image, which ships the fundus photograph (pip install scikit-image)"
        ) from None
    path = Path(distribution.locate_file("skimage/data/retina.jpg"))
    if not path.is_file():
        raise DataError(f"scikit-image is installed but {path} is missing")
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"))
    top, bottom, left, right = fundus_box(array)
    return array, ((left + right) / 2, (top + bottom) / 2, min(bottom - top, right - left) / 2)


def patient_grades(patients: int, mix: tuple[float, ...], rng: np.random.Generator) -> list[tuple[int, int]]:
    """(left, right) grades: the two eyes of a patient are correlated (same grade or one apart)."""
    grades = []
    shares = np.asarray(mix, dtype=np.float64)
    for grade in rng.choice(5, size=patients, p=shares / shares.sum()):  # Kaggle's published shares sum to 100.1%
        other = int(np.clip(grade + rng.choice([-1, 0, 0, 0, 1]), 0, 4))
        grades.append((int(grade), other) if rng.random() < 0.5 else (other, int(grade)))
    return grades


def _random_point(rng, centre, radius, inner=0.0, outer=0.85, quadrant=None):
    angle = (
        rng.uniform(0, 2 * math.pi)
        if quadrant is None
        else rng.uniform(quadrant * math.pi / 2, (quadrant + 1) * math.pi / 2)
    )
    distance = radius * math.sqrt(rng.uniform(inner**2, outer**2))
    return centre[0] + distance * math.cos(angle), centre[1] + distance * math.sin(angle)


def _dot(draw, point, radius, colour):
    x, y = point
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)


def _draw_new_vessels(image: Image.Image, centre, radius: float, unit: float, rng: np.random.Generator) -> Image.Image:
    """Grade 4: new vessels (tortuous, branching, fine) and a pre-retinal haemorrhage."""
    vessels = Image.new("RGBA", image.size, (0, 0, 0, 0))
    vessels_draw = ImageDraw.Draw(vessels)
    for _ in range(rng.integers(3, 7)):
        x, y = _random_point(rng, centre, radius, 0.1, 0.6)
        heading = rng.uniform(0, 2 * math.pi)
        points = [(x, y)]
        for _ in range(rng.integers(15, 30)):
            heading += rng.normal(0, 0.7)
            x, y = x + unit * 12 * math.cos(heading), y + unit * 12 * math.sin(heading)
            points.append((x, y))
        vessels_draw.line(points, fill=(150, 25, 20, 230), width=max(1, int(round(unit * 3))))
    x, y = _random_point(rng, centre, radius, 0.3, 0.7)  # pre-retinal haemorrhage: a large "boat"
    size = unit * rng.uniform(60, 100)
    vessels_draw.chord((x - size, y - size, x + size, y + size), 0, 180, fill=(85, 8, 5, 240))
    return Image.alpha_composite(image, vessels.filter(ImageFilter.GaussianBlur(unit)))


def draw_lesions(image: Image.Image, grade: int, centre, radius: float, rng: np.random.Generator) -> Image.Image:
    """Lesions of `grade` drawn on an RGB fundus; sizes are relative to the fundus radius."""
    if grade == 0:
        return image
    unit = radius / 650  # the photograph's fundus radius is about 650 px
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    microaneurysms = {1: (4, 9), 2: (10, 25), 3: (20, 40), 4: (20, 40)}[grade]
    for _ in range(rng.integers(*microaneurysms)):
        _dot(draw, _random_point(rng, centre, radius), unit * rng.uniform(4, 7), (110, 15, 10, 235))
    if grade >= 2:
        haemorrhages = int(rng.integers(3, 10)) if grade == 2 else 0
        spots = [_random_point(rng, centre, radius) for _ in range(haemorrhages)]
        if grade >= 3:  # many, in all four quadrants
            spots += [
                _random_point(rng, centre, radius, 0.15, 0.85, quadrant)
                for quadrant in range(4)
                for _ in range(rng.integers(5, 10))
            ]
        for point in spots:
            for _ in range(rng.integers(1, 4)):  # blots are irregular: a few overlapping ellipses
                offset = unit * rng.normal(0, 5, size=2)
                size = unit * rng.uniform(8, 18)
                _dot(draw, (point[0] + offset[0], point[1] + offset[1]), size, (95, 10, 8, 230))
        for _ in range(rng.integers(2, 6) if grade == 2 else rng.integers(4, 10)):  # hard exudates
            cluster = _random_point(rng, centre, radius, 0.1, 0.7)
            for _ in range(rng.integers(3, 9)):
                point = (cluster[0] + unit * rng.normal(0, 18), cluster[1] + unit * rng.normal(0, 18))
                _dot(draw, point, unit * rng.uniform(3, 7), (240, 215, 120, 240))
    if grade >= 3:
        for _ in range(rng.integers(3, 8)):  # flame haemorrhages: thin streaks
            x, y = _random_point(rng, centre, radius, 0.2, 0.8)
            angle = rng.uniform(0, math.pi)
            length, width = unit * rng.uniform(25, 45), unit * rng.uniform(5, 9)
            dx, dy = math.cos(angle), math.sin(angle)
            draw.polygon(
                [
                    (x - dx * length, y - dy * length),
                    (x - dy * width, y + dx * width),
                    (x + dx * length, y + dy * length),
                    (x + dy * width, y - dx * width),
                ],
                fill=(120, 20, 15, 220),
            )
    image = Image.alpha_composite(image.convert("RGBA"), overlay.filter(ImageFilter.GaussianBlur(unit * 1.2)))
    if grade >= 3:  # cotton-wool spots: pale, fluffy
        fluffy = Image.new("RGBA", image.size, (0, 0, 0, 0))
        fluffy_draw = ImageDraw.Draw(fluffy)
        for _ in range(rng.integers(3, 7)):
            x, y = _random_point(rng, centre, radius, 0.2, 0.7)
            rx, ry = unit * rng.uniform(20, 40), unit * rng.uniform(14, 28)
            fluffy_draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=(235, 235, 215, 200))
        image = Image.alpha_composite(image, fluffy.filter(ImageFilter.GaussianBlur(unit * 8)))
    if grade == 4:
        image = _draw_new_vessels(image, centre, radius, unit, rng)
    return image.convert("RGB")


def photograph(grade: int, right_eye: bool, seed: tuple[int, ...]) -> tuple[Image.Image, int]:
    """One simulated photograph and the JPEG quality to save it with."""
    rng = np.random.default_rng(seed)
    array, (centre_x, centre_y, radius) = base_photograph()
    image = Image.fromarray(array)
    if right_eye:
        image = ImageOps.mirror(image)
        centre_x = image.width - centre_x
    image = draw_lesions(image, grade, (centre_x, centre_y), radius, rng)
    angle = rng.uniform(-25, 25) + (180 if rng.random() < 0.05 else 0)  # some cameras give inverted images
    image = image.rotate(angle, resample=Image.Resampling.BILINEAR, center=(centre_x, centre_y))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
    gamma = rng.uniform(0.7, 1.4)
    cast = rng.uniform(0.85, 1.15, size=3)
    table = [
        min(255, int(255 * (value / 255) ** gamma * cast[channel])) for channel in range(3) for value in range(256)
    ]
    image = image.point(table)
    if rng.random() < 0.2:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(1, 4)))
    width, height = FRAMES[rng.integers(len(FRAMES))]
    diameter = int(height * rng.uniform(0.9, 1.05))  # some frames clip the top and bottom of the fundus
    scale = diameter / (2 * radius)
    fundus = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.BILINEAR)
    frame = Image.new("RGB", (width, height), (0, 0, 0))
    offset = rng.normal(0, 0.02 * height, size=2)
    frame.paste(fundus, (int(width / 2 - centre_x * scale + offset[0]), int(height / 2 - centre_y * scale + offset[1])))
    return frame, int(rng.integers(75, 96))


def _write_photograph(task: tuple[str, int, bool, tuple[int, ...]]) -> None:
    path, grade, right_eye, seed = task
    target = Path(path)
    if target.is_file():
        return
    image, quality = photograph(grade, right_eye, seed)
    save_jpeg_atomic(image, target, quality)


DEMO_GENERATOR_VERSION = 1
DEMO_STATE_FILE = "demo-state.json"


MAX_DEMO_PATIENTS = 100_000  # far more than any test needs; a typo of 10**9 would simulate for days


def _demo_state(root: Path) -> dict | None:
    """The parameters a demo folder was simulated with; None when it holds none."""
    state = root / DEMO_STATE_FILE
    if not state.is_file():
        return None
    try:
        loaded = json.loads(state.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        raise DataError(f"{state} is damaged; remove the demo folder {root} to simulate it again") from None
    return loaded if isinstance(loaded, dict) else {}


def check_demo_options(root: Path, patients: int = 300, test_patients: int = 20, mix: str = "kaggle") -> None:
    """Refused before anything is simulated: the grade mix, the counts, and a --demo-dir that is
    not a demo set (a demo set of other parameters is simulated again)."""
    if mix not in GRADE_MIXES:
        raise UsageError(f"unknown grade mix {mix!r}; valid: {', '.join(GRADE_MIXES)}")
    if not 1 <= patients <= MAX_DEMO_PATIENTS or not 0 <= test_patients <= MAX_DEMO_PATIENTS:
        raise UsageError(
            f"the demo set takes 1 to {MAX_DEMO_PATIENTS:,} training patients and 0 to {MAX_DEMO_PATIENTS:,} test "
            "patients"
        )
    if root.exists() and not root.is_dir():
        raise UsageError(f"--demo-dir {root} is a file, not a folder")
    if root.is_dir() and any(root.iterdir()) and _demo_state(root) is None:
        raise UsageError(f"{root} holds files that are not a dltrain demo set; choose another --demo-dir")


def _claim_demo_folder(root: Path, parameters: dict) -> None:
    """Photographs already written with the same parameters are kept (an interrupted run
    resumes); other parameters regenerate the set (a folder dltrain simulated)."""
    previous = _demo_state(root)
    if previous == parameters:
        return
    if previous is not None:
        for folder in ("train", "test"):
            shutil.rmtree(root / folder, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(root / DEMO_STATE_FILE, json.dumps(parameters, indent=2) + "\n")


def write_demo_set(
    root: Path, patients: int = 300, test_patients: int = 20, seed: int = 0, mix: str = "kaggle", workers: int = 1
) -> Path:
    """Write trainLabels.csv, train/*.jpeg, test/*.jpeg (and the test answers) under `root`."""
    check_demo_options(root, patients, test_patients, mix)
    parameters = {"patients": patients, "test_patients": test_patients, "seed": seed, "mix": mix}
    _claim_demo_folder(root, {**parameters, "generator": DEMO_GENERATOR_VERSION})
    rng = np.random.default_rng(seed)
    grades = patient_grades(patients + test_patients, GRADE_MIXES[mix], rng)
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "test").mkdir(parents=True, exist_ok=True)
    tasks, train_rows, test_rows = [], [], []
    for index, eye_grades in enumerate(grades):
        patient = index + 1
        folder, rows = ("train", train_rows) if index < patients else ("test", test_rows)
        for eye, grade in zip(("left", "right"), eye_grades):
            name = f"{patient}_{eye}"
            tasks.append((str(root / folder / f"{name}.jpeg"), grade, eye == "right", (seed, patient, eye == "right")))
            rows.append({"image": name, "level": grade})
    with progress_bar("simulating photographs", len(tasks)) as advance:
        if workers == 1:
            for task in tasks:
                _write_photograph(task)
                advance()
        else:
            with worker_pool(workers) as pool:
                for _ in pool.imap(_write_photograph, tasks, chunksize=4):
                    advance()
    write_text_atomic(root / "trainLabels.csv", pd.DataFrame(train_rows).to_csv(index=False))
    # Kaggle published the test answers after the competition as retinopathy_solution.csv.
    write_text_atomic(root / "retinopathy_solution.csv", pd.DataFrame(test_rows).to_csv(index=False))
    return root
