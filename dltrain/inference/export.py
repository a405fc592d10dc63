"""`dltrain export`: a finished run's model as a TensorFlow SavedModel (TF Serving), a LiteRT
(TensorFlow Lite) file for phones, or ONNX, each checked on the spot against the Keras model.

The check runs the exported model and the Keras model on the same samples of the run's own data
(the validation split) and compares the class probabilities; an export that disagrees beyond the
tolerance is removed and reported as an error, never left behind as if it were good.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dltrain.core.checks import check_positive
from dltrain.core.errors import DataError, UsageError
from dltrain.core.files import swap_in
from dltrain.core.outputs import OutputKind, check_output
from dltrain.data.datadir import DataDir
from dltrain.inference.exported import FORMATS, ExportedModel, record_export, require_onnx_runtime
from dltrain.runs.rundir import Run
from dltrain.tasks import task_of

logger = logging.getLogger("dltrain")
QUANTIZATIONS = ("none", "float16", "dynamic")
CHECK_SAMPLES = 32
MIN_AGREEMENT = 0.999  # share of the check samples whose predicted class must match
DEFAULT_TOLERANCE = {"none": 1e-4, "float16": 1e-2, "dynamic": 5e-2}  # largest probability difference allowed


@dataclass
class ExportCheck:
    path: Path
    format: str
    quantization: str
    samples: int
    max_difference: float
    agreement: float
    accuracy: dict | None = None  # quantised exports: {"keras": ..., "exported": ...} on the validation split


def _classes(outputs: np.ndarray, run) -> np.ndarray:
    """Predicted classes as the run's task grades them (argmax, or a regression head's thresholds)."""
    return task_of(run.data_meta).labels_from_outputs(outputs, run)


def _check_inputs(run, samples: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (and labels) of the run's validation split as a float32 array, `samples` of them or all."""
    data = DataDir.open(run.data_dir)
    scoring = task_of(run.data_meta).scoring_inputs(data, "val")
    inputs = scoring.inputs
    if not isinstance(inputs, np.ndarray):  # images: a tf.data pipeline of batches
        batches = []
        for images, _ in inputs:
            batches.append(images.numpy())
            if samples is not None and sum(len(batch) for batch in batches) >= samples:
                break
        inputs = np.concatenate(batches)
    count = len(inputs) if samples is None else min(samples, len(inputs))
    if count == 0:
        raise DataError(f"{data.path}: the validation split is empty; nothing to check the export on")
    return inputs[:count].astype(np.float32), scoring.labels[:count]


def _export_saved_model(model, target: Path) -> None:
    model.export(str(target), format="tf_saved_model", verbose=False)


def _export_litert(model, target: Path, quantization: str) -> None:
    import tensorflow as tf

    options = {}
    if quantization != "none":
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]  # weights to 8 bits (dynamic range) ...
    if quantization == "float16":
        options["target_spec"] = {"supported_types": [tf.float16]}  # ... or to float16
    # A batch of one: the dynamic-batch conversion fails on Keras 3 GRUs, and a phone classifies
    # one window (or photograph) at a time anyway.
    signature = [tf.TensorSpec((1, *model.input_shape[1:]), tf.float32)]
    model.export(str(target), format="litert", input_signature=signature, verbose=False, **options)


def _export_onnx(model, target: Path) -> None:
    """Freeze the model's forward pass into a graph and convert it with tf2onnx.

    Not `model.export(format="onnx")`: with TensorFlow 2.21 its tf2onnx path leaves the constants the
    input `Normalization` layer captures (the training mean and variance) as extra graph inputs
    that no caller can feed. Freezing ourselves inlines them; `lower_control_flow=False` keeps the
    GRU's while loop whole, which tf2onnx rewrites into an ONNX loop (lowered, it leaves dangling
    placeholders).
    """
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    # The converters' deprecation notices about their own TF1-era calls are not the user's business.
    quiet = [logging.getLogger(name) for name in ("tensorflow", "tf2onnx")]
    levels = [each.level for each in quiet]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for each in quiet:
            each.setLevel(logging.ERROR)
        try:
            try:  # tf2onnx 1.17 still uses numpy aliases that numpy 2 removed; Keras ships the patch.
                from keras.src.export.tf2onnx_lib import patch_tf2onnx

                patch_tf2onnx()
            except ImportError:
                pass
            signature = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="inputs")
            forward = tf.function(lambda inputs: model(inputs, training=False), input_signature=[signature])
            frozen = convert_variables_to_constants_v2(
                forward.get_concrete_function(), lower_control_flow=False, aggressive_inlining=True
            )
            tf2onnx.convert.from_graph_def(
                frozen.graph.as_graph_def(),
                name=model.name,
                input_names=[tensor.name for tensor in frozen.inputs],
                output_names=[tensor.name for tensor in frozen.outputs],
                output_path=str(target),
            )
        finally:
            for each, level in zip(quiet, levels):
                each.setLevel(level)


def float32_policies(config):
    """A model config with every mixed_float16 dtype policy made float32 (the rest kept as it was)."""
    if isinstance(config, list):
        return [float32_policies(value) for value in config]
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "DTypePolicy" and (config.get("config") or {}).get("name") == "mixed_float16":
        return {**config, "config": {**config["config"], "name": "float32"}}
    return {key: float32_policies(value) for key, value in config.items()}


def float32_model(model):
    """The model computing in float32. A run trained under mixed precision keeps float32 weights and
    computes in float16, which a LiteRT file cannot run without TensorFlow's Flex ops (it does not
    load), and which phones and ONNX runtimes have no use for: the export is of this copy, with the
    same weights, and is checked against it."""
    config = model.get_config()
    converted = float32_policies(config)
    if converted == config:
        return model
    copy = model.__class__.from_config(converted)
    copy.set_weights(model.get_weights())
    logger.info("the run computes in mixed precision: the export computes in float32, with the same weights")
    return copy


def check_format_available(export_format: str) -> None:
    if export_format not in FORMATS:
        raise UsageError(f"--format {export_format}: choose one of {', '.join(FORMATS)}")
    if export_format == "onnx":
        require_onnx_runtime(also=("tf2onnx",))


def _suffix_for(export_format: str) -> str:
    return {"saved_model": "", "litert": ".tflite", "onnx": ".onnx"}[export_format]


def _check_options(export_format: str, out: Path, quantization: str, tolerance: float | None) -> float:
    """Every option refused before anything is loaded; returns the tolerance to check with."""
    check_format_available(export_format)
    if quantization not in QUANTIZATIONS:
        raise UsageError(f"--quantize {quantization}: choose one of {', '.join(QUANTIZATIONS)}")
    if quantization != "none" and export_format != "litert":
        raise UsageError("--quantize applies to --format litert only")
    suffix = _suffix_for(export_format)
    if suffix and out.suffix != suffix:
        raise UsageError(f"--out {out}: a {export_format} export is one file ending in {suffix}")
    tolerance = DEFAULT_TOLERANCE[quantization] if tolerance is None else tolerance
    return check_positive("--tolerance", tolerance)


def _compare(model, exported_model, run, inputs, check: ExportCheck) -> None:
    """Probabilities and classes of the export against the Keras model; for a quantised export
    also the accuracy of both on the whole validation split."""
    expected = model.predict(inputs, verbose=0)
    exported = np.asarray(exported_model.predict(inputs), dtype=np.float64)
    check.max_difference = float(np.abs(exported - expected).max())
    check.agreement = float((_classes(exported, run) == _classes(expected, run)).mean())
    if check.quantization != "none":
        all_inputs, all_labels = _check_inputs(run, None)
        check.accuracy = {
            "keras": float((_classes(model.predict(all_inputs, verbose=0), run) == all_labels).mean()),
            "exported": float((_classes(exported_model.predict(all_inputs), run) == all_labels).mean()),
        }


def check_export_out(run, out: Path, export_format: str, force: bool) -> None:
    """An export goes anywhere but over the run's own files; --force replaces only an export of this run."""
    from dltrain.inference.exported import check_export_of

    def is_ours(path: Path) -> bool:
        try:
            return check_export_of(run, path) == export_format
        except DataError:
            return False

    kind = OutputKind(f"{export_format} export of this run", folder=export_format == "saved_model", is_ours=is_ours)
    check_output(out, kind, force, containers=[(run.path, run.owns)])


def export_run(
    run_dir: Path,
    export_format: str,
    out: Path,
    quantization: str = "none",
    tolerance: float | None = None,
    force: bool = False,
) -> ExportCheck:
    from dltrain.core.console import import_tensorflow_quietly

    tolerance = _check_options(export_format, out, quantization, tolerance)
    run = Run.open(run_dir)
    check_export_out(run, out, export_format, force)
    import_tensorflow_quietly()
    model = float32_model(run.load_model())
    inputs, _ = _check_inputs(run, CHECK_SAMPLES)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        target = staging / (out.name if _suffix_for(export_format) else "saved_model")
        logger.info(
            "exporting %s as %s%s",
            run_dir,
            export_format,
            f" ({quantization} quantisation)" if quantization != "none" else "",
        )
        if export_format == "litert":
            _export_litert(model, target, quantization)
        else:
            {"saved_model": _export_saved_model, "onnx": _export_onnx}[export_format](model, target)
        check = ExportCheck(out, export_format, quantization, len(inputs), float("nan"), 0.0)
        _compare(model, ExportedModel(target), run, inputs, check)
        if not check.max_difference <= tolerance or check.agreement < MIN_AGREEMENT:
            raise DataError(
                f"the {export_format} export disagrees with the Keras model on {len(inputs)} validation samples "
                f"(largest probability difference {check.max_difference:.2e}, tolerance {tolerance:g}; classes agree "
                f"on {check.agreement:.1%}); nothing written"
            )
        record_export(run, target, export_format)  # what predict --model will check the export against
        swap_in(target, out)
        return check
    finally:
        shutil.rmtree(staging, ignore_errors=True)
