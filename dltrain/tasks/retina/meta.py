"""A retina DATA_DIR: `meta.json` fields of its own, and its splits as `<split>.csv` tables over
`images/<name>.jpeg`. The grades, their names and the image options are defined here once."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dltrain.core.errors import DataError, UsageError
from dltrain.data.meta import MetaBase

LEVELS = (0, 1, 2, 3, 4)
GRADE_NAMES = ["no DR", "mild", "moderate", "severe", "proliferative"]  # grades 0-4
IMAGES_FOLDER = "images"
GRAHAM_BACKGROUND = 128.0  # the grey outside Graham's circular mask (data.retina.images.graham_normalise)
MAX_IMAGE_SIZE = 2048  # pixels a side; above it one decoded batch no longer fits a GPU, nor a worker's memory


class ImageOptions(BaseModel):
    """How every photograph is turned into a prepared image; the same options serve `predict`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(512, ge=32, le=MAX_IMAGE_SIZE)
    graham: bool = False
    quality: int = Field(95, ge=1, le=100)

    @property
    def background(self) -> float:
        """What lies around the fundus in a prepared image: Graham's grey (128) or black. Augmentation
        fills what a rotation or shift uncovers with it, so that training sees what scoring sees."""
        return GRAHAM_BACKGROUND if self.graham else 0.0

    def fingerprint(self) -> str:
        return f"size={self.size},graham={int(self.graham)},quality={self.quality}"

    @classmethod
    def from_options(cls, **values) -> ImageOptions:
        """From command-line options: a value out of bounds is one UsageError naming the option."""
        try:
            return cls(**values)
        except ValidationError as error:
            first = error.errors()[0]
            option = "--" + str(first["loc"][0]).replace("_", "-")
            raise UsageError(f"{option} {first.get('input')!r}: {first['msg'].lower()}") from None


class RetinaMeta(MetaBase):
    task: Literal["retina"] = "retina"
    image_options: ImageOptions

    compatibility_fields: ClassVar[tuple[str, ...]] = ("task", "classes", "input_shape", "image_options")

    @model_validator(mode="after")
    def _shapes_agree(self):
        size = self.image_options.size
        if self.input_shape != [size, size, 3]:
            raise ValueError(f"input_shape {self.input_shape} is not [{size}, {size}, 3] (image_options.size {size})")
        if len(self.classes) != len(LEVELS):
            raise ValueError(f"classes: retinopathy has {len(LEVELS)} grades, not {len(self.classes)}")
        return self

    def pool_splits(self, parts: list[pd.DataFrame]) -> pd.DataFrame:
        return pd.concat(parts, ignore_index=True)

    def read_split(self, folder: Path, name: str) -> pd.DataFrame:
        """`<name>.csv` (image, level, patient; no level when unlabelled), every image checked to be
        a plain name whose prepared file lies inside `images/`."""
        path = Path(folder) / f"{name}.csv"
        if not path.is_file():
            raise DataError(f"{folder} has no {name} split ({path.name} missing)")
        try:
            table = pd.read_csv(path, dtype={"image": str, "patient": str}, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
            raise DataError(f"{path}: not a readable CSV ({str(error).splitlines()[0]})") from None
        columns = ["image", "patient"] + ([] if name == "unlabelled" else ["level"])
        missing = [column for column in columns if column not in table.columns]
        if missing:
            raise DataError(f"{path}: no {', '.join(missing)} column; run prepare again")
        if name != "unlabelled":
            levels = pd.to_numeric(table["level"], errors="coerce")
            if levels.isna().any() or not levels.isin(LEVELS).all():
                row = int((levels.isna() | ~levels.isin(LEVELS)).to_numpy().argmax())
                raise DataError(f"{path} row {row + 2}: level {table['level'].iloc[row]!r} is not a grade 0-4")
            table["level"] = levels.astype("int64")
        images = Path(folder).resolve() / IMAGES_FOLDER
        for image in table["image"]:
            _check_image_name(image, path)
        missing_files = [image for image in table["image"] if not (images / f"{image}.jpeg").is_file()]
        if missing_files:
            raise DataError(
                f"{folder}: {len(missing_files)} prepared image(s) of the {name} split are missing (first: "
                f"{missing_files[0]}); run prepare again"
            )
        return table

    def image_path(self, folder: Path, image: str) -> Path:
        return Path(folder) / IMAGES_FOLDER / f"{image}.jpeg"


def _check_image_name(image: str, table: Path) -> None:
    """A prepared table names images by their file stem only: anything with a folder in it (an
    absolute path, `..`) would read from outside the DATA_DIR."""
    if not image or image != Path(image).name or image in (".", "..") or "\\" in image or "\x00" in image:
        raise DataError(
            f"{table}: image {image!r} is not a plain file name inside images/; the table was not written by dltrain "
            "prepare"
        )
