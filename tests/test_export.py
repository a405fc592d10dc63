"""`dltrain export`: each format's on-the-spot parity check, on a small trained model of each task."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from helpers.cli import invoke
from helpers.data import write_uci_folder


@pytest.fixture(scope="module")
def har_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    dataset = write_uci_folder(root / "raw", windows_per_subject=12, window=32)
    assert invoke("prepare", "har", str(dataset), "--out", str(root / "data")).exit_code == 0
    result = invoke(
        "train",
        str(root / "data"),
        "--out",
        str(root / "run"),
        "--config",
        "har-gru",
        "--set",
        "train.epochs=2",
        "--set",
        "early_stopping.start_from_epoch=0",
        "--set",
        "train.batch_size=8",
    )
    assert result.exit_code == 0, result.output
    return root / "run"


def _export(run, *arguments):
    return invoke("export", str(run), *arguments)


def _predict(run, source, out, *arguments):
    result = invoke("predict", str(run), str(source), "--out", str(out), *arguments)
    assert result.exit_code == 0, result.output
    return pd.read_csv(out)


@pytest.fixture(scope="module")
def keras_predictions(har_run, retina_run, tmp_path_factory):
    """What the runs' own model.keras predicts: the HAPT-style data's test split, the raw photographs."""
    folder = tmp_path_factory.mktemp("keras-predictions")
    return {
        "har": _predict(har_run, har_run.parent / "data", folder / "har.csv"),
        "retina": _predict(retina_run["run"], retina_run["source"] / "train", folder / "retina.csv"),
    }


@pytest.mark.parametrize("task", ["har", "retina"])
@pytest.mark.parametrize(
    "export_format, name", [("saved_model", "served"), ("litert", "model.tflite"), ("onnx", "model.onnx")]
)
def test_export_matches_the_keras_model_and_predicts_alike(
    task, export_format, name, har_run, retina_run, keras_predictions, tmp_path
):
    import onnxruntime
    import tensorflow as tf

    run = har_run if task == "har" else retina_run["run"]
    out = tmp_path / name
    result = _export(run, "--format", export_format, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "classes agree 100.0%" in result.output
    difference = float(result.output.split("largest probability difference ")[1].split(",")[0])
    assert difference <= 1e-4
    if export_format == "saved_model":
        served = tf.saved_model.load(str(out))  # what TF Serving loads
        (spec,) = served.signatures["serving_default"].structured_input_signature[1].values()
        assert spec.shape[0] is None  # any batch size
    elif export_format == "litert":
        interpreter = tf.lite.Interpreter(model_path=str(out))
        assert interpreter.get_input_details()[0]["shape"][0] == 1  # a fixed batch of one, for phones
    else:
        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert len(session.get_inputs()) == 1  # the training mean and variance are inside, not extra inputs
        assert not isinstance(session.get_inputs()[0].shape[0], int)  # any batch size
    # `predict --model`: the exported file scores a whole input as the Keras model does.
    expected = keras_predictions[task]
    if task == "har":
        predicted = _predict(run, run.parent / "data", tmp_path / "p.csv", "--model", str(out))
        probabilities = [column for column in expected if column.startswith("prob_")]
        assert (predicted["activity"] == expected["activity"]).all()
        assert np.abs(predicted[probabilities].to_numpy() - expected[probabilities].to_numpy()).max() <= 1e-4
    else:
        predicted = _predict(run, retina_run["source"] / "train", tmp_path / "p.csv", "--model", str(out))
        assert predicted.equals(expected)


def test_predict_refuses_an_export_of_another_run(har_run, retina_run, tmp_path):
    out = tmp_path / "har.tflite"
    assert _export(har_run, "--format", "litert", "--out", str(out)).exit_code == 0
    result = invoke(
        "predict",
        str(retina_run["run"]),
        str(retina_run["source"] / "train"),
        "--out",
        str(tmp_path / "p.csv"),
        "--model",
        str(out),
    )
    assert result.exit_code == 1 and "exported from another run" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "p.csv").exists()
    (tmp_path / "broken.onnx").write_text("not a model")
    predict = ["predict", har_run, har_run.parent / "data", "--out", tmp_path / "p.csv", "--model"]
    result = invoke(*predict, tmp_path / "broken.onnx")  # not written by dltrain export: never loaded
    assert result.exit_code == 1 and "is not an export of" in result.output
    assert not (tmp_path / "p.csv").exists()
    tampered = tmp_path / "tampered.tflite"
    assert _export(har_run, "--format", "litert", "--out", str(tampered)).exit_code == 0
    tampered.write_bytes(tampered.read_bytes() + b"\0")  # changed after export
    assert invoke(*predict, tampered).exit_code == 1 and not (tmp_path / "p.csv").exists()
    from dltrain.inference.exported import record_export
    from dltrain.runs.rundir import Run

    record_export(Run.open(har_run), tmp_path / "broken.onnx", "onnx")  # as if export had written a damaged file
    result = invoke(*predict, tmp_path / "broken.onnx")
    assert result.exit_code == 1 and "cannot be loaded as onnx" in result.output
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("quantization", ["float16", "dynamic"])
def test_quantised_litert_reports_accuracy_beside_the_float_model(quantization, har_run, tmp_path):
    out = tmp_path / "small.tflite"
    result = _export(har_run, "--format", "litert", "--quantize", quantization, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "validation accuracy: Keras" in result.output and out.stat().st_size > 1000


def test_an_export_beyond_the_tolerance_is_refused_and_removed(har_run, tmp_path):
    out = tmp_path / "q.tflite"
    result = _export(har_run, "--format", "litert", "--quantize", "dynamic", "--tolerance", "1e-12", "--out", str(out))
    assert result.exit_code == 1
    assert "disagrees with the Keras model" in result.output and "nothing written" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("missing", ["tf2onnx", "onnxruntime"])
def test_onnx_without_the_extra_names_it(missing, har_run, tmp_path, monkeypatch):
    # A None entry in sys.modules is how Python marks a module as not importable.
    monkeypatch.setitem(sys.modules, missing, None)
    result = _export(har_run, "--format", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert (
        result.exit_code == 2
        and "pip install 'dltrain[onnx]'" in result.output
        and f"{missing} not installed" in result.output
    )
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["--format", "coreml", "--out", "m.x"], "'coreml' is not one of 'saved_model', 'litert', 'onnx'"),
        (["--format", "litert", "--out", "m.onnx"], "ending in .tflite"),
        (
            ["--format", "saved_model", "--quantize", "dynamic", "--out", "served"],
            "--quantize applies to --format litert only",
        ),
    ],
)
def test_bad_export_options_are_one_line(arguments, fragment, har_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _export(har_run, *arguments)
    assert result.exit_code == 2 and fragment in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def mixed_runs(har_run, retina_run, tmp_path_factory):
    """Runs trained as a tensor-core GPU trains them: mixed precision (retina: augmentation in the model)."""
    from helpers.training import TINY_CNN

    root = tmp_path_factory.mktemp("mixed")
    har = invoke(
        "train", har_run.parent / "data", "--out", root / "har", "--config", "har-gru",
        *["--set", "train.epochs=1", "--set", "early_stopping.start_from_epoch=0", "--set", "train.batch_size=8"],
        *["--set", "train.mixed_precision=true"],
    )  # fmt: skip
    assert har.exit_code == 0, har.output
    retina = invoke(
        "train", retina_run["data"], "--out", root / "retina", *TINY_CNN,
        *["--set", "train.mixed_precision=true", "--set", "augment.placement=model"],
    )  # fmt: skip
    assert retina.exit_code == 0, retina.output
    return {"har": root / "har", "retina": root / "retina"}


@pytest.mark.parametrize(
    ("task", "export_format"), [("har", "litert"), ("retina", "litert"), ("retina", "saved_model"), ("retina", "onnx")]
)
def test_exports_of_a_mixed_precision_run_load_and_agree_with_it(task, export_format, mixed_runs, tmp_path):
    """The export computes in float32 with the run's weights (a LiteRT file of float16 compute needs
    TensorFlow's Flex ops and does not load): checked against that copy on the spot, and close to what
    the run itself computes in float16."""
    from dltrain.data.datadir import DataDir
    from dltrain.inference.exported import ExportedModel
    from dltrain.runs.rundir import Run
    from dltrain.tasks import task_of

    run = Run.open(mixed_runs[task])
    assert run.provenance.precision == "mixed_float16"
    out = tmp_path / {"saved_model": "served", "litert": "model.tflite", "onnx": "model.onnx"}[export_format]
    result = _export(run.path, "--format", export_format, "--out", str(out))
    assert result.exit_code == 0, result.output
    inputs = task_of(run.data_meta).scoring_inputs(DataDir.open(run.data_dir), "val").inputs
    inputs = inputs if isinstance(inputs, np.ndarray) else np.concatenate([batch.numpy() for batch, _ in inputs])
    inputs = inputs.astype(np.float32)
    exported = np.asarray(ExportedModel(out).predict(inputs), np.float64)  # loads in its own runtime
    own = run.load_model().predict(inputs, verbose=0)  # float16 compute, as the run was trained
    assert np.abs(exported - own).max() <= 2e-2
