"""Commands that use a finished run: `evaluate`, `predict`, `export`."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from dltrain.cli.common import examples, split_name, user_errors

logger = logging.getLogger("dltrain")
EVALUATE_EXAMPLES = examples(
    "dltrain evaluate models/har-gru --split test", "dltrain evaluate models/retina-cnn --split val --tta flips --json"
)
PREDICT_EXAMPLES = examples(
    "dltrain predict models/har-gru hapt --out predictions.csv",
    "dltrain predict models/retina-cnn data/raw/retina-demo/test --out sub.csv",
    "dltrain predict models/retina-cnn photo.jpeg --out -",
)
BLEND_EXAMPLES = examples("dltrain blend models/retina-cnn", "dltrain blend models/retina-cnn --tta flips")
EXPLAIN_EXAMPLES = examples(
    "dltrain explain models/retina-cnn photo.jpeg --out why-retina",
    "dltrain explain models/har-gru data/hapt --split test --limit 8 --out why-har",
)
EXPORT_EXAMPLES = examples(
    "dltrain export models/har-gru --format litert --out har-gru.tflite",
    "dltrain export models/har-gru --format saved_model --out har-gru-served",
)

RunDirArgument = Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A finished RUN_DIR (from 'dltrain train').")]
DataOption = Annotated[Path | None, typer.Option("--data", help="DATA_DIR to score (default: the run's own).")]
SplitOption = Annotated[
    str,
    typer.Option(
        metavar="<val|test|train>", callback=split_name, help="Which split to score ('validation' is val's long name)."
    ),
]
AsJsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")]
TtaOption = Annotated[
    str | None,
    typer.Option(
        metavar="MODE",
        help="A test-time augmentation the run's task offers (every task: none). Retina runs: flips (each image's "
        "outputs averaged over its 4 flips) or dihedral (its 8 rotations and mirrors); a regression head grades "
        "them with the thresholds tuned for that mode. Default: the mode the run's blend.json was fitted for, "
        "else none.",
        show_default=False,
    ),
]
BlendTtaOption = Annotated[
    str,
    typer.Option(
        metavar="MODE",
        help="Fit the blend on outputs averaged over this TTA mode's views (retina runs: none, flips, dihedral); "
        "evaluate and predict then use that mode by default.",
    ),
]
SourceArgument = Annotated[
    str,
    typer.Argument(
        metavar="INPUT",
        help="Activity: any SOURCE that 'prepare har' reads (labels ignored). Retina: a folder of photographs or "
        "one photograph. Either: a prepared DATA_DIR.",
    ),
]
OutOption = Annotated[
    Path,
    typer.Option(
        "--out",
        "-o",
        help="CSV to write, or - for standard output: activity 'id,activity' (+ probabilities); retina 'image,level' "
        "(Kaggle submission).",
    ),
]
PredictSplitOption = Annotated[
    str | None,
    typer.Option(
        metavar="<unlabelled|test|val|train>",
        callback=split_name,
        help="With a DATA_DIR: which split (default: unlabelled if present, else test).",
    ),
]
ProbabilitiesOption = Annotated[bool, typer.Option(help="Activity: add prob_<class> columns after id,activity.")]
ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model",
        "-m",
        help="Score with a file from 'dltrain export' (SavedModel folder, .tflite, .onnx) instead of the run's "
        "model.keras.",
    ),
]
PredictForceOption = Annotated[bool, typer.Option(help="Replace an existing predictions CSV.")]
BlendOption = Annotated[
    bool, typer.Option(help="Retina: grade both eyes of a patient together with the run's blend.json, when it has one.")
]
ExportFormatOption = Annotated[
    Literal["saved_model", "litert", "onnx"],
    typer.Option(
        "--format",
        "-f",
        help="saved_model (TF Serving), litert (TensorFlow Lite, batch of one) or onnx (needs the 'onnx' extra).",
    ),
]
ExportOutOption = Annotated[
    Path,
    typer.Option("--out", "-o", help="Where to write: a folder for saved_model, a .tflite or .onnx file otherwise."),
]
QuantizeOption = Annotated[
    Literal["none", "float16", "dynamic"],
    typer.Option(help="litert only: none, float16 or dynamic (8-bit weights, dynamic range)."),
]
ToleranceOption = Annotated[
    float | None,
    typer.Option(
        help="Largest probability difference to the Keras model allowed on the check samples (default: 1e-4; "
        "float16 1e-2; dynamic 5e-2)."
    ),
]
ForceOption = Annotated[bool, typer.Option(help="Replace an existing --out.")]
ExplainSourcesArgument = Annotated[
    list[str],
    typer.Argument(
        metavar="INPUT...",
        help="What predict takes: retina photographs or folders of them; activity SOURCEs; or one prepared "
        "DATA_DIR (with --split).",
    ),
]
ExplainOutOption = Annotated[
    Path, typer.Option("--out", "-o", help="A new folder for the figures and explain.json (what each one shows).")
]
LimitOption = Annotated[int, typer.Option(help="Explain the first N photographs or windows (a figure each).")]
ExplainForceOption = Annotated[bool, typer.Option(help="Replace a folder of explanations dltrain wrote.")]


@user_errors
def evaluate(
    run_dir: RunDirArgument,
    data: DataOption = None,
    split: SplitOption = "test",
    as_json: AsJsonOption = False,
    tta: TtaOption = None,
) -> None:
    """Score a run: accuracy, macro F1, per-class precision/recall and the confusion matrix."""
    from dltrain.core.errors import UsageError

    if split not in ("val", "test", "train"):
        raise UsageError(f"--split {split!r}: choose val or test (or train)")
    from dltrain.inference.evaluate import confused_table, confusion_table, metrics_table, screening_lines
    from dltrain.runs.evaluation import evaluate_run

    metrics = evaluate_run(run_dir, data, split, tta)
    if as_json:
        sys.stdout.write(json.dumps(metrics) + "\n")
        return
    from rich.console import Console

    console = Console()
    console.print(metrics_table(metrics))
    console.print(confusion_table(metrics))
    confused = confused_table(metrics)
    if confused is not None:
        console.print(confused)
    for line in screening_lines(metrics):
        console.print(line, highlight=False)
    console.print(f"wrote {run_dir}/metrics-{split}.json and figures: {', '.join(metrics['figures'])}", highlight=False)


@user_errors
def predict(
    run_dir: RunDirArgument,
    source: SourceArgument,
    out: OutOption,
    split: PredictSplitOption = None,
    probabilities: ProbabilitiesOption = True,
    tta: TtaOption = None,
    model: ModelOption = None,
    force: PredictForceOption = False,
    blend: BlendOption = True,
) -> None:
    """Write predictions for INPUT with the run's model and the training normalisation."""
    from dltrain.inference.predict import predict_run

    frame = predict_run(run_dir, source, out, split, probabilities, tta, model, force, blend)
    counts = frame[frame.columns[1]].value_counts()
    logger.info(
        "wrote %d predictions to %s (%s)",
        len(frame),
        out,
        ", ".join(f"{name} {count}" for name, count in counts.items()),
    )


@user_errors
def explain(
    run_dir: RunDirArgument,
    sources: ExplainSourcesArgument,
    out: ExplainOutOption,
    split: PredictSplitOption = None,  # a labelled split adds the truth to each figure
    limit: LimitOption = 16,
    force: ExplainForceOption = False,
) -> None:
    """Show what made the model's answers: Grad-CAM over photographs, saliency over signal windows."""
    from dltrain.inference.explain import EXPLAIN_INDEX, explain_run

    index = explain_run(run_dir, sources, out, split, limit, force)
    logger.info("wrote %d figure(s) to %s (%s lists what each shows)", len(index.figures), out, EXPLAIN_INDEX)


@user_errors
def export(
    run_dir: RunDirArgument,
    export_format: ExportFormatOption,
    out: ExportOutOption,
    quantize: QuantizeOption = "none",
    tolerance: ToleranceOption = None,
    force: ForceOption = False,
) -> None:
    """Export a run's model and check it on the spot against the Keras model on 32 validation samples."""
    from dltrain.inference.export import export_run

    check = export_run(run_dir, export_format, out, quantize, tolerance, force)
    quantisation = f", {check.quantization} quantisation" if check.quantization != "none" else ""
    logger.info("wrote %s (%s%s)", check.path, check.format, quantisation)
    logger.info(
        "check on %d validation samples: largest probability difference %.2e, classes agree %.1f%%",
        check.samples,
        check.max_difference,
        100 * check.agreement,
    )
    if check.accuracy:
        logger.info("validation accuracy: Keras %.4f, export %.4f", check.accuracy["keras"], check.accuracy["exported"])


@user_errors
def blend(run_dir: RunDirArgument, data: DataOption = None, tta: BlendTtaOption = "none") -> None:
    """Retina: fit how both eyes of a patient combine; writes blend.json, which evaluate and predict then use.

    Each image's own output, its fellow eye's and which eye it is, in a ridge regression fitted on validation folds.
    """
    from dltrain.inference.blend import blend_run

    fitted = blend_run(run_dir, data, tta)
    kappas = fitted.validation_kappa
    logger.info(
        "wrote %s/blend.json: validation kappa %.4f per image, %.4f blended (out of fold, %d folds, %d images)",
        run_dir,
        kappas["per_image"],
        kappas["blended_out_of_fold"],
        fitted.folds,
        fitted.images,
    )
