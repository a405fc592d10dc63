"""Both eyes of a patient, blended (all three top Kaggle teams did it; o_O: 0.824 -> 0.845 kappa).

Each image becomes [its own output, its fellow eye's output, is_right] (an image without its fellow
eye uses its own output twice; their difference would add nothing to a linear model of both); a ridge
regression on those features is fitted on the validation split with patient-grouped folds, the grade
thresholds are tuned on its out-of-fold outputs, and the result is written to the run as blend.json:
coefficients and thresholds only, plain numbers that load without running anything. The per-image
kappa it is compared with is out of fold too: thresholds tuned on the other folds' outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dltrain.core.errors import DataError, describe_validation_error
from dltrain.core.files import write_json_atomic
from dltrain.tasks.retina.grading import apply_thresholds, quadratic_kappa, tune_thresholds
from dltrain.tasks.retina.sources import EYE_NAME

BLEND_FILE = "blend.json"
FEATURES = ("own", "fellow", "is_right")
BLEND_FORMAT_VERSION = 2  # 1: four features, with own - fellow
MAX_FOLDS = 5


class Blend(BaseModel):
    """blend.json: the second stage, as numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    format_version: Literal[2] = BLEND_FORMAT_VERSION  # another version is refused, not misread
    tta: str = "none"  # the test-time augmentation of the outputs it was fitted on
    features: list[str] = Field(default_factory=lambda: list(FEATURES))
    coefficients: list[float] = Field(min_length=len(FEATURES), max_length=len(FEATURES))
    intercept: float
    thresholds: list[float] = Field(min_length=4, max_length=4)
    folds: int
    images: int
    validation_kappa: dict[str, float]  # per image and blended, both out of fold, on validation

    def grades(self, names: list[str], outputs: np.ndarray) -> np.ndarray:
        return apply_thresholds(self.values(names, outputs), self.thresholds)

    def values(self, names: list[str], outputs: np.ndarray) -> np.ndarray:
        return eye_features(names, outputs) @ np.asarray(self.coefficients) + self.intercept


def scalar_outputs(outputs: np.ndarray) -> np.ndarray:
    """One number per image: a regression head's grade, or the expected grade of class probabilities."""
    outputs = np.asarray(outputs, np.float64)
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        return outputs @ np.arange(outputs.shape[1])
    return outputs.reshape(-1)


def patient_and_eye(name: str) -> tuple[str, bool | None]:
    match = EYE_NAME.match(name)
    return (match.group("patient"), match.group("eye").lower() == "right") if match else (name, None)


def fellow_index(names: list[str]) -> np.ndarray:
    """For each image, the index of the same patient's other eye, or its own index when there is none."""
    positions = {patient_and_eye(name): index for index, name in enumerate(names)}
    fellows = []
    for index, name in enumerate(names):
        patient, right = patient_and_eye(name)
        fellows.append(positions.get((patient, not right), index) if right is not None else index)
    return np.asarray(fellows, np.int64)


def eye_features(names: list[str], outputs: np.ndarray) -> np.ndarray:
    own = scalar_outputs(outputs)
    fellow = own[fellow_index(names)]
    is_right = np.asarray([1.0 if patient_and_eye(name)[1] else 0.0 for name in names])
    return np.stack([own, fellow, is_right], axis=1)


def fit_blend(names: list[str], outputs: np.ndarray, levels: np.ndarray, tta: str = "none") -> Blend:
    """The ridge blend fitted on validation, with thresholds tuned on its out-of-fold outputs."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold

    features = eye_features(names, outputs)
    patients = [patient_and_eye(name)[0] for name in names]
    folds = min(MAX_FOLDS, len(set(patients)))
    if folds < 2:
        raise DataError(f"blending needs validation images of at least 2 patients, found {len(set(patients))}")
    if len(np.unique(levels)) < 2:  # kappa is undefined, and there is nothing to learn
        raise DataError(f"blending needs at least two grades in the validation split; it holds grade {levels[0]} only")
    own = scalar_outputs(outputs)
    out_of_fold, own_graded = np.zeros(len(names)), np.zeros(len(names), np.int64)
    for train_rows, held_rows in GroupKFold(n_splits=folds).split(features, levels, groups=patients):
        out_of_fold[held_rows] = (
            Ridge(alpha=1.0).fit(features[train_rows], levels[train_rows]).predict(features[held_rows])
        )
        # the per-image model on equal terms: its cut points, too, tuned on the other folds only
        own_graded[held_rows] = apply_thresholds(own[held_rows], tune_thresholds(own[train_rows], levels[train_rows]))
    thresholds = tune_thresholds(out_of_fold, levels)
    final = Ridge(alpha=1.0).fit(features, levels)
    per_image = quadratic_kappa(levels, own_graded)
    blended = quadratic_kappa(levels, apply_thresholds(out_of_fold, thresholds))
    return Blend(
        tta=tta,
        coefficients=final.coef_.tolist(),
        intercept=float(final.intercept_),
        thresholds=thresholds,
        folds=folds,
        images=len(names),
        validation_kappa={"per_image": per_image, "blended_out_of_fold": blended},
    )


def write_blend(run_dir: Path, blend: Blend) -> None:
    write_json_atomic(Path(run_dir) / BLEND_FILE, blend.model_dump(mode="json"))


def read_blend(run_dir: Path) -> Blend | None:
    path = Path(run_dir) / BLEND_FILE
    if not path.is_file():
        return None
    try:
        return Blend.model_validate_json(path.read_bytes())
    except ValidationError as error:  # not JSON, a key missing or wrong, another format version
        raise DataError(f"{path} is damaged ({describe_validation_error(error)}); run 'dltrain blend' again") from None
