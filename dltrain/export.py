"""`dltrain export`: a finished run's model as a TensorFlow SavedModel (TF Serving), a LiteRT
(TensorFlow Lite) file for phones, or ONNX, each checked on the spot against the Keras model.

The check runs the exported model and the Keras model on the same samples of the run's own data
(the validation split) and compares the class probabilities; an export that disagrees beyond the
tolerance is removed and reported as an error, never left behind as if it were good.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dltrain.errors import DataError, UsageError

logger = logging.getLogger("dltrain")
FORMATS = ("saved_model", "litert", "onnx")
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
    """Predicted classes: argmax of probabilities, or the tuned thresholds of a regression head."""
    if outputs.shape[-1] == 1:
        from dltrain.retina.grading import DEFAULT_THRESHOLDS, grades_from_outputs

        return grades_from_outputs(outputs, "regression", run.provenance.get("thresholds") or DEFAULT_THRESHOLDS)
    return outputs.argmax(axis=1)


def _check_inputs(run, samples: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (and labels) of the run's validation split as a float32 array, `samples` of them or all."""
    from dltrain.feeds import scoring_inputs

    data_dir = run.data_dir
    inputs, labels, _ = scoring_inputs(data_dir, run.data_meta, "val")
    if not isinstance(inputs, np.ndarray):  # retina: a tf.data pipeline of batches
        batches = []
        for images, _ in inputs:
            batches.append(images.numpy())
            if samples is not None and sum(len(batch) for batch in batches) >= samples:
                break
        inputs = np.concatenate(batches)
    count = len(inputs) if samples is None else min(samples, len(inputs))
    if count == 0:
        raise DataError(f"{data_dir}: the validation split is empty; nothing to check the export on")
    return inputs[:count].astype(np.float32), labels[:count]


def _export_saved_model(model, target: Path) -> None:
    model.export(str(target), format="tf_saved_model", verbose=False)


def _saved_model_predict(path: Path, inputs: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    served = tf.saved_model.load(str(path))
    return np.concatenate([np.asarray(served.serve(tf.constant(inputs[start:start + 256]))) for start in range(0, len(inputs), 256)])


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


def _litert_predict(path: Path, inputs: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source, result = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for sample in inputs:
        interpreter.set_tensor(source["index"], sample[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(result["index"])[0].copy())
    return np.stack(outputs)


def _export_onnx(model, target: Path) -> None:
    model.export(str(target), format="onnx", verbose=False)


def _onnx_predict(path: Path, inputs: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: inputs[start:start + 256]})[0] for start in range(0, len(inputs), 256)])


def check_format_available(export_format: str) -> None:
    if export_format not in FORMATS:
        raise UsageError(f"--format {export_format}: choose one of {', '.join(FORMATS)}")
    if export_format == "onnx":
        missing = [name for name in ("tf2onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
        if missing:
            raise UsageError(f"ONNX export needs the optional extra: pip install 'dltrain[onnx]' ({', '.join(missing)} not installed)")


def _suffix_for(export_format: str) -> str:
    return {"saved_model": "", "litert": ".tflite", "onnx": ".onnx"}[export_format]


def export_run(run_dir: Path, export_format: str, out: Path, quantization: str = "none", tolerance: float | None = None, force: bool = False) -> ExportCheck:
    from dltrain.console import import_tensorflow_quietly
    from dltrain.run_directory import open_run

    check_format_available(export_format)
    if quantization not in QUANTIZATIONS:
        raise UsageError(f"--quantize {quantization}: choose one of {', '.join(QUANTIZATIONS)}")
    if quantization != "none" and export_format != "litert":
        raise UsageError("--quantize applies to --format litert only")
    suffix = _suffix_for(export_format)
    if suffix and out.suffix != suffix:
        raise UsageError(f"--out {out}: a {export_format} export is one file ending in {suffix}")
    if out.exists() and not force:
        raise UsageError(f"--out {out} already exists; choose another path or pass --force to replace it")
    tolerance = DEFAULT_TOLERANCE[quantization] if tolerance is None else tolerance
    if tolerance <= 0:
        raise UsageError(f"--tolerance {tolerance}: must be positive")
    run = open_run(run_dir)
    import_tensorflow_quietly()
    model = run.load_model()
    inputs, labels = _check_inputs(run, CHECK_SAMPLES)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        target = staging / (out.name if suffix else "saved_model")
        exporter, runner = {"saved_model": (_export_saved_model, _saved_model_predict), "litert": (_export_litert, _litert_predict),
                            "onnx": (_export_onnx, _onnx_predict)}[export_format]
        logger.info("exporting %s as %s%s", run_dir, export_format, f" ({quantization} quantisation)" if quantization != "none" else "")
        if export_format == "litert":
            exporter(model, target, quantization)
        else:
            exporter(model, target)
        expected = model.predict(inputs, verbose=0)
        exported = np.asarray(runner(target, inputs), dtype=np.float64)
        check = ExportCheck(out, export_format, quantization, len(inputs), float(np.abs(exported - expected).max()),
                            float((_classes(exported, run) == _classes(expected, run)).mean()))
        if quantization != "none":
            all_inputs, all_labels = _check_inputs(run, None)
            check.accuracy = {"keras": float((_classes(model.predict(all_inputs, verbose=0), run) == all_labels).mean()),
                              "exported": float((_classes(np.asarray(runner(target, all_inputs)), run) == all_labels).mean())}
        if check.max_difference > tolerance or check.agreement < MIN_AGREEMENT:
            raise DataError(
                f"the {export_format} export disagrees with the Keras model on {len(inputs)} validation samples "
                f"(largest probability difference {check.max_difference:.2e}, tolerance {tolerance:g}; classes agree on {check.agreement:.1%}); nothing written"
            )
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        target.rename(out)
        return check
    finally:
        shutil.rmtree(staging, ignore_errors=True)
