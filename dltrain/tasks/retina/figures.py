"""What a retina run's model sees: the figures `evaluate` writes for a scored split (the referable-disease
ROC curve, the outputs per true grade beside the cut points, the most wrong photographs with their
heatmaps) and `dltrain explain`'s Grad-CAM figure of each photograph."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dltrain.core.errors import DataError
from dltrain.core.files import safe_file_names
from dltrain.data.datadir import DataDir
from dltrain.networks.attribution import gradients_available
from dltrain.tasks.base import ExplainRequest, ScoredSplit
from dltrain.tasks.retina.blend import read_blend, scalar_outputs
from dltrain.tasks.retina.screening import REFERABLE_GRADE, referable_metrics, referable_score, roc_points

logger = logging.getLogger("dltrain")
WORST_SHOWN = 12  # photographs on the sheet of the most wrong ones


def prepared_images(data_dir: Path, names: list[str]) -> np.ndarray:
    """The prepared photographs (uint8, as the model takes them) of `names` in a DATA_DIR."""
    from PIL import Image

    from dltrain.tasks.retina.pipeline import IMAGES_FOLDER

    images = []
    for name in names:
        path = Path(data_dir) / IMAGES_FOLDER / f"{name}.jpeg"
        try:
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB")))
        except OSError as error:
            raise DataError(f"{path}: cannot be read ({error})") from None
    return np.stack(images)


def split_figures(model, run, data: DataDir, scored: ScoredSplit, title: str, thresholds: list[float]) -> list[str]:
    """The ROC curve (the blend's beside the per-image one), and the outputs per grade and the most wrong
    photographs per image and, where the run has a blend for this TTA mode, for both eyes blended."""
    for pattern in (roc_file(scored), f"grade-outputs-{scored.name}*.png", f"worst-{scored.name}*.png"):
        for stale in run.path.glob(pattern):  # an earlier scoring's (a blend since removed, nothing wrong now)
            stale.unlink()
    names = []
    where = f"{title}: {scored.name} split"
    if referable_roc(run, scored, f"{where}, referable = grade {REFERABLE_GRADE}+", run.path / roc_file(scored)):
        names.append(roc_file(scored))
    regression = run.config.model.head == "regression"
    gradings = [("", scalar_outputs(scored.outputs), scored.predicted, thresholds if regression else [])]
    blend = read_blend(run.path)
    if blend is not None and blend.tta == scored.tta:
        ids = list(scored.scoring.ids)
        values = blend.values(ids, scored.outputs)
        gradings.append(("-blended", values, blend.grades(ids, scored.outputs), blend.thresholds))
    for suffix, values, grades, cuts in gradings:
        what, by_value = ("both eyes blended", True) if suffix else ("per image", regression)
        outputs_file = f"grade-outputs-{scored.name}{suffix}.png"
        outputs_by_grade(
            run, scored.scoring.labels, values, cuts, by_value, f"{where}, {what}", run.path / outputs_file
        )
        names.append(outputs_file)
        worst_file = f"worst-{scored.name}{suffix}.png"
        shown = f"{where}: the most wrong photographs, {what}"
        if gradients_available() and worst_photographs(
            model, data, scored, values, grades, shown, run.path / worst_file
        ):
            names.append(worst_file)
    if not gradients_available():
        logger.info("no sheet of the most wrong photographs: their Grad-CAM needs the TensorFlow backend")
    return names


def roc_file(scored: ScoredSplit) -> str:
    return f"referable-roc-{scored.name}.png"


def referable_roc(run, scored: ScoredSplit, title: str, path: Path) -> bool:
    """The per-image curve (and the blend's, when the run has one for this TTA mode) with the operating
    points: the grading cut points and 90% / 95% sensitivity. False where the split lacks either class."""
    from dltrain.reporting.screening import plot_referable_roc

    levels, score = scored.scoring.labels, referable_score(scored.outputs)
    metrics = referable_metrics(levels, scored.predicted, score)
    if metrics["referable_auc"] is None:
        return False
    curves = {"per image": (*roc_points(levels, score), metrics["referable_auc"])}
    blend = read_blend(run.path)
    if blend is not None and blend.tta == scored.tta:
        names = list(scored.scoring.ids)
        blended = blend.values(names, scored.outputs)
        blended_metrics = referable_metrics(levels, blend.grades(names, scored.outputs), blended)
        curves["both eyes blended"] = (*roc_points(levels, blended), blended_metrics["referable_auc"])
    regression = run.config.model.head == "regression"
    points = [
        {
            "label": "grading cut points" if regression else "predicted grades (most probable)",
            "sensitivity": metrics["referable_sensitivity"],
            "specificity": metrics["referable_specificity"],
        }
    ]
    points += [
        {"label": f"{point['target_sensitivity']:.0%} sensitivity", **point}
        for point in metrics["referable_operating_points"]
    ]
    plot_referable_roc(curves, points, title, path)
    return True


def outputs_by_grade(run, levels, values, cuts, graded_by_value: bool, title: str, path: Path) -> None:
    """A regression head's (or a blend's) grade values beside the cut points that grade them; a softmax's
    expected grade (sum of grade x probability), for reading only: a softmax grades by its most probable class."""
    from dltrain.reporting.screening import plot_outputs_by_grade

    grades = run.data_meta.classes
    by_grade = {f"{grade} {name}": values[levels == grade] for grade, name in enumerate(grades)}
    what = "grade value" if graded_by_value else "expected grade (probability-weighted)"
    shown = f"{title}: outputs per true grade" + (", the cut points dashed" if cuts else "")
    plot_outputs_by_grade(by_grade, list(cuts), what, shown, path)


def worst_photographs(model, data: DataDir, scored: ScoredSplit, values, predicted, title: str, path: Path) -> bool:
    """The photographs graded furthest from their true grade (ties: the value furthest from it), each
    beside its Grad-CAM heatmap. False where none is wrong."""
    from dltrain.networks.attribution import grad_cam
    from dltrain.reporting.explanations import plot_photograph_sheet

    truth = scored.scoring.labels
    distance = np.abs(predicted - truth) + np.abs(values - truth) / 100
    order = [index for index in np.argsort(-distance, kind="stable") if predicted[index] != truth[index]]
    chosen = order[:WORST_SHOWN]
    if not chosen:
        return False
    names = [str(scored.scoring.ids[index]) for index in chosen]
    images = prepared_images(data.path, names)
    captions = [f"{name}\ntrue {truth[index]}, graded {predicted[index]}" for name, index in zip(names, chosen)]
    plot_photograph_sheet(images, grad_cam(model, images), captions, title, path)
    return True


def explain_photographs(run, model, request: ExplainRequest, out: Path, grade) -> list[dict]:
    """One figure per photograph: it, and it under its Grad-CAM heatmap, captioned with the grade (and
    the true one where INPUT is a labelled DATA_DIR split). `grade(outputs)` grades model outputs."""
    from dltrain.networks.attribution import grad_cam
    from dltrain.reporting.explanations import plot_photograph_sheet

    names, images, truth = explained_inputs(run, request)
    outputs = model.predict(images, verbose=0)
    grades, heatmaps = grade(outputs), grad_cam(model, images)
    rows = []
    for index, (name, file_stem) in enumerate(zip(names, safe_file_names(names))):
        known = f", true {truth[index]}" if truth is not None else ""
        file_name = f"gradcam-{file_stem}.png"
        caption = f"{name}\ngraded {grades[index]} (this eye alone){known}"
        shown = slice(index, index + 1)
        plot_photograph_sheet(images[shown], heatmaps[shown], [caption], run.path.resolve().name, out / file_name)
        true = None if truth is None else int(truth[index])
        rows.append({"file": file_name, "input": name, "predicted": int(grades[index]), "true": true})
    return rows


def explained_inputs(run, request: ExplainRequest) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """(names, prepared photographs, true grades or None) of the first `request.limit` photographs of INPUT."""
    from dltrain.tasks.retina.photographs import prepared_chunks, raw_image_paths

    if request.data is not None:
        table = request.data.split(request.split).head(request.limit)
        names = table["image"].astype(str).tolist()
        truth = table["level"].to_numpy(np.int64) if "level" in table else None
        return names, prepared_images(request.data.path, names), truth
    paths = list(dict.fromkeys(path.resolve() for source in request.sources for path in raw_image_paths(Path(source))))
    names, images = [], []
    for chunk, chunk_names, _ in prepared_chunks(paths, run.data_meta.image_options, request.rejects):
        images.extend(chunk)
        names.extend(chunk_names)
        if len(names) >= request.limit:  # the first N readable photographs
            break
    names, images = names[: request.limit], images[: request.limit]
    if not names:
        raise DataError(f"none of the {len(paths)} photograph(s) of INPUT could be read")
    return names, np.stack(images), None
