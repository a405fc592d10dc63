"""`dltrain prepare retina`: photographs -> cropped square JPEGs, patient-wise splits, rejects.

DATA_DIR layout:
    images/<name>.jpeg                     one per usable photograph, `--size` pixels square
    train.csv, val.csv, test.csv           image,level,patient (both eyes of a patient together)
    unlabelled.csv                         image,patient (Kaggle test/), for predict
    rejects.csv                            image,reason,split for everything that could not be used
                                           (split "unlabelled": a photograph of the source's test/)
    prepare-state.json                     the image options, so a re-run can resume safely
    meta.json                              written last: its presence means the folder is complete
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from dltrain import __version__
from dltrain.core.checks import check_fraction
from dltrain.core.console import progress_bar
from dltrain.core.errors import DataError, DltrainError, UsageError
from dltrain.core.files import swap_in, write_json_atomic, write_text_atomic
from dltrain.core.outputs import DATA_DIR, check_against_inputs, check_output, output_lock, refuse_file_as_folder
from dltrain.core.workers import worker_pool
from dltrain.data.datadir import META_FILE, write_meta
from dltrain.tasks.retina.images import RejectedImage, prepare_image, save_jpeg_atomic
from dltrain.tasks.retina.meta import GRADE_NAMES, IMAGES_FOLDER, LEVELS, ImageOptions, RetinaMeta
from dltrain.tasks.retina.sources import Reject, RetinaItem, list_retina_source

logger = logging.getLogger("dltrain")
STATE_FILE = "prepare-state.json"
T = TypeVar("T")


def _patient_grades(items: list[RetinaItem]) -> tuple[dict[str, str], list[RetinaItem], dict[str, int]]:
    """(fixed splits from the source, items still to split, patient -> worst grade)."""
    splits = {item.name: item.split for item in items if item.split}
    open_items = [item for item in items if not item.split and item.level is not None]
    patients: dict[str, int] = {}
    for item in open_items:
        patients[item.patient] = max(patients.get(item.patient, 0), item.level)
    return splits, open_items, patients


def held_out_counts(items: list[RetinaItem], val_fraction: float, test_fraction: float) -> dict[str, int]:
    """How many patients go to val and test: arithmetic only, so a split that cannot be made is
    refused before anything is written (the split itself needs scikit-learn, 1.6 s to import)."""
    splits, _, patients = _patient_grades(items)
    has_val = any(split == "val" for split in splits.values())
    counts, remaining = {}, len(patients)
    for split, fraction in {"val": 0.0 if has_val else val_fraction, "test": test_fraction}.items():
        # The fraction is of all patients; rescale it to what is left after the previous cut.
        share = fraction * len(patients) / max(remaining, 1)
        if share <= 0 or remaining < 2:
            continue
        count = max(1, int(round(share * remaining)))
        if count >= remaining:
            raise DataError(
                f"{len(patients)} patient(s) cannot give a {split} split of {fraction:.0%}; lower the fraction"
            )
        counts[split] = count
        remaining -= count
    return counts


def split_by_patient(items: list[RetinaItem], val_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """Image name -> split. Whole patients move together, stratified by the patient's worst grade."""
    from sklearn.model_selection import train_test_split

    counts = held_out_counts(items, val_fraction, test_fraction)
    splits, open_items, patients = _patient_grades(items)
    names = sorted(patients)
    assignment = {name: "train" for name in names}
    remaining, remaining_grades = names, [patients[name] for name in names]
    for split, count in counts.items():
        try:
            kept, chosen, kept_grades, _ = train_test_split(
                remaining, remaining_grades, test_size=count, random_state=seed, stratify=remaining_grades
            )
        except ValueError:  # a grade with a single patient, or fewer held-out patients than grades
            kept, chosen, kept_grades, _ = train_test_split(
                remaining, remaining_grades, test_size=count, random_state=seed
            )
        for name in chosen:
            assignment[name] = split
        remaining, remaining_grades = kept, kept_grades
    for item in open_items:
        splits[item.name] = assignment[item.patient]
    return splits


def _prepare_one(task: tuple[str, str, ImageOptions]) -> str | None:
    """Runs in a worker: write one prepared image atomically; return a reject reason or None."""
    source, target, options = task
    target_path = Path(target)
    if target_path.is_file() and target_path.stat().st_mtime_ns >= Path(source).stat().st_mtime_ns:
        return None  # prepared by an earlier run with the same options, from this very file
    try:
        image = prepare_image(Path(source), options)
    except RejectedImage as error:
        return str(error)
    save_jpeg_atomic(image, target_path, options.quality)
    return None


def preparation_state(source: Path, options: ImageOptions) -> dict:
    return {"image_options": options.fingerprint(), "source": str(source.resolve())}


def _same_preparation(out: Path, state: dict) -> bool:
    state_path = out / STATE_FILE
    try:
        return state_path.is_file() and json.loads(state_path.read_text()) == state
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return False


def build_folder(out: Path, state: dict, force: bool) -> Path:
    """Where to prepare: `out` itself when it is new or holds this very preparation (a re-run
    resumes it); with --force over another preparation, a staging folder beside it (resumed just
    the same by a re-run) that takes `out`'s place only once complete."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())) or _same_preparation(out, state):
        refuse_file_as_folder(out)
        return out
    if not force:
        raise UsageError(
            f"--out {out} already holds other files, or images prepared from another source or with other options; "
            "pass --force to replace them"
        )
    check_output(out, DATA_DIR, force)  # --force replaces only what dltrain wrote
    staging = out.parent / f".{out.name}.staging"
    if staging.exists() and not _same_preparation(staging, state):
        shutil.rmtree(staging)
    return staging


def check_retina_options(out: Path, source: Path, val_fraction: float, test_fraction: float, workers: int) -> None:
    """Every option refused before anything is written (for the demo set, before it is simulated)."""
    check_fraction("--val-fraction", val_fraction)
    check_fraction("--test-fraction", test_fraction)
    if workers < 1:
        raise UsageError(f"--workers {workers}: must be at least 1")
    check_against_inputs(out, [source])


def prepare_retina_source(
    source: str,
    out: Path,
    options: ImageOptions,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 42,
    workers: int = 1,
    force: bool = False,
    demo_dir: Path | None = None,
    **demo_options,
) -> RetinaMeta:
    """SOURCE as `prepare retina` takes it: 'demo' (the simulated set, written first in the Kaggle
    layout under `demo_dir`; `demo_options` go to write_demo_set) or a folder."""
    if source != "demo":
        return prepare_retina(Path(source), out, options, val_fraction, test_fraction, seed, workers, force)
    from dltrain.tasks.retina.simulate import check_demo_options, write_demo_set

    raw = demo_dir or out.parent / "raw" / "retina-demo"
    check_retina_options(out, raw, val_fraction, test_fraction, workers)
    check_demo_options(raw, **demo_options)
    logger.info("writing the simulated demo set (Kaggle layout) to %s", raw)
    write_demo_set(raw, seed=seed, workers=workers, **demo_options)
    return prepare_retina(raw, out, options, val_fraction, test_fraction, seed, workers, force)


def prepare_retina(
    source: Path,
    out: Path,
    options: ImageOptions,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    workers: int,
    force: bool = False,
) -> RetinaMeta:
    check_retina_options(out, source, val_fraction, test_fraction, workers)
    items, rejects, layout = list_retina_source(source)
    logger.info("SOURCE %s: a %s-layout folder, %d images listed", source, layout, len(items))
    held_out_counts(items, val_fraction, test_fraction)  # refuse an impossible split before writing anything
    state = preparation_state(source, options)
    with output_lock(out):
        target = build_folder(out, state, force)
        created = not target.exists()
        try:
            usable, splits = _prepare_images(
                target, items, rejects, state, options, (val_fraction, test_fraction, seed), workers
            )
        except DltrainError:  # nothing usable: a folder this run made is no result (an interruption stays resumable)
            if created:
                shutil.rmtree(target, ignore_errors=True)
            raise
        meta = _write_tables(target, usable, splits, rejects, options)
        meta.source = {"kind": layout, "path": str(source)}
        meta.options = {"val_fraction": val_fraction, "test_fraction": test_fraction, "seed": seed}
        write_meta(target, meta)
        if target != out:
            swap_in(target, out)
    summary = ", ".join(f"{name} {count}" for name, count in meta.splits.items())
    logger.info(
        "prepared %d images of %d px (%s); %d rejected (see rejects.csv) -> %s",
        len(usable),
        options.size,
        summary,
        len(rejects),
        out,
    )
    warn_of_shared_patients(usable, splits)
    return meta


def warn_of_shared_patients(items: list[RetinaItem], splits: dict[str, str]) -> None:
    """dltrain splits by patient, but a course layout fixes validation/ itself: a patient with one eye
    in train/ and the other in validation/ lets the model see the validation patient's retina."""
    seen: dict[str, set[str]] = {}
    for item in items:
        if item.level is not None:
            seen.setdefault(item.patient, set()).add(splits.get(item.name, "train"))
    shared = sorted(patient for patient, names in seen.items() if len(names) > 1)
    if shared:
        logger.warning(
            "%d patient(s) have eyes in more than one split (e.g. %s, as the source's validation/ folder "
            "puts them): validation scores will be optimistic; move both eyes of each patient into one folder",
            len(shared),
            ", ".join(shared[:3]),
        )


def _prepare_images(
    target: Path, items, rejects: list[Reject], state: dict, options: ImageOptions, split: tuple, workers: int
):
    """Every photograph prepared into `target/images` (those already there from an interrupted run
    are kept); the usable items and the patient split. No usable photograph at all is an error."""
    images_dir = target / IMAGES_FOLDER
    images_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(target / STATE_FILE, state)
    (target / META_FILE).unlink(missing_ok=True)  # the folder is incomplete until meta.json is rewritten
    for stray in images_dir.glob(".*.partial*"):  # left by a run that was killed mid-write
        stray.unlink()
    tasks = [(str(item.path), str(images_dir / f"{item.name}.jpeg"), options) for item in items]
    # The patient split is drawn while the workers prepare the images: it does not affect them.
    reasons, splits = _run_tasks(tasks, workers, lambda: split_by_patient(items, *split))
    usable = [item for item, reason in zip(items, reasons) if reason is None]
    rejects += [
        Reject(item.name, reason, "unlabelled" if item.split == "unlabelled" else "")
        for item, reason in zip(items, reasons)
        if reason is not None
    ]
    if not any(item.level is not None for item in usable):
        first = next((reject for reject in rejects if reject.reason), None)
        example = f" (first: {first.image}: {first.reason})" if first else ""
        raise DataError(
            f"none of the {len(items)} labelled photograph(s) could be prepared{example}; see the reasons above"
        )
    return usable, splits


def _run_tasks(tasks: list[tuple], workers: int, meanwhile: Callable[[], T]) -> tuple[list[str | None], T]:
    """Prepare every image (a reject reason or None each) and, at the same time, run `meanwhile`
    in a thread of this process; its result comes back beside the reasons."""
    reasons: list[str | None] = []
    with progress_bar("preparing images", len(tasks)) as advance:
        if workers == 1 or len(tasks) < 2:
            result = meanwhile()
            for task in tasks:
                reasons.append(_prepare_one(task))
                advance()
            return reasons, result
        with worker_pool(workers) as pool, ThreadPoolExecutor(max_workers=1) as thread:
            # The pool forks every worker before `meanwhile` starts: forking while another thread
            # imports modules could hand a worker a held import lock.
            results = pool.imap(_prepare_one, tasks, chunksize=max(1, len(tasks) // (workers * 8)))
            later = thread.submit(meanwhile)
            for reason in results:
                reasons.append(reason)
                advance()
            return reasons, later.result()


REJECTS_FILE = "rejects.csv"


def unreadable_unlabelled(data_dir: Path) -> list[tuple[str, str]]:
    """(image, reason) of the source's test/ photographs that prepare could not use: a submission still
    needs their rows. A DATA_DIR from a dltrain that did not record the split column has none listed."""
    path = Path(data_dir) / REJECTS_FILE
    if not path.is_file():
        return []
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not the rejects table prepare wrote ({str(error).splitlines()[0]})") from None
    if not {"image", "reason", "split"} <= set(table.columns):
        return []
    unlabelled = table[table["split"] == "unlabelled"]
    return list(zip(unlabelled["image"], unlabelled["reason"]))


def _write_tables(
    out: Path, usable: list[RetinaItem], splits: dict[str, str], rejects: list[Reject], options: ImageOptions
) -> RetinaMeta:
    rows = pd.DataFrame(
        [
            {
                "image": item.name,
                "level": item.level,
                "patient": item.patient,
                "split": splits.get(item.name, "unlabelled"),
            }
            for item in usable
        ],
        columns=["image", "level", "patient", "split"],
    ).astype({"level": "Int64"})  # unlabelled rows have no level; the others stay integers
    splits_written, class_counts = {}, {}
    for split in ("train", "val", "test", "unlabelled"):
        part = rows[rows["split"] == split].drop(columns="split")
        if split == "unlabelled":
            part = part.drop(columns="level")
        write_text_atomic(out / f"{split}.csv", part.to_csv(index=False))
        if len(part):
            splits_written[split] = int(len(part))
        if split != "unlabelled" and len(part):
            counts = np.bincount(part["level"].astype(int), minlength=len(LEVELS))
            class_counts[split] = dict(zip(GRADE_NAMES, counts.tolist()))
    reject_table = pd.DataFrame(
        [{"image": reject.image, "reason": reject.reason, "split": reject.split} for reject in rejects],
        columns=["image", "reason", "split"],
    )
    write_text_atomic(out / REJECTS_FILE, reject_table.to_csv(index=False))
    return RetinaMeta(
        classes=GRADE_NAMES,
        input_shape=[options.size, options.size, 3],
        image_options=options,
        splits=splits_written,
        class_counts=class_counts,
        rejects=len(rejects),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        dltrain_version=__version__,
    )
