"""The commands the documentation shows are run as written, on small data the test makes: only the
sizes shrink (image side, workers, epochs, filters), and the paths point into tmp_path."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pandas as pd
from helpers.cli import invoke
from helpers.data import kaggle_folder

DOCS = Path(__file__).resolve().parent.parent / "docs"


def documented_commands(path: Path) -> list[list[str]]:
    """Every `dltrain ...` line of the page's bash blocks, continuation lines joined, as arguments."""
    blocks = re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.DOTALL)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line)[1:] for line in lines if line.startswith("dltrain ")]


def shrunk(arguments: list[str], paths: dict[str, str], sizes: dict[str, str]) -> list[str]:
    """The command with the page's paths replaced by the test's, and its sizes by small ones."""
    text = shlex.join(arguments)
    for old, new in {**paths, **sizes}.items():
        text = text.replace(old, new)
    return shlex.split(text)


def test_the_kaggle_recipe_runs_as_written(tmp_path):
    from dltrain.networks.backbone import backbone_network

    commands = documented_commands(DOCS / "kaggle-dr.md")
    assert [command[0] for command in commands] == [
        "prepare",
        "train",
        "train",
        "blend",
        "evaluate",
        "predict",
        "refit",
        "evaluate",
        "explain",
    ]
    source = kaggle_folder(tmp_path / "kaggle", patients=10)
    weights = tmp_path / "efficientnetb0_notop.weights.h5"
    backbone_network("EfficientNetB0", (64, 64, 3), None).save_weights(str(weights))
    paths = {
        "weights/efficientnetb3_notop.weights.h5": str(weights),
        "kaggle-dr": str(source),
        "data/kaggle-512": str(tmp_path / "data"),
        "models/kaggle-512-final": str(tmp_path / "run-final"),
        "models/kaggle-512": str(tmp_path / "run"),
        "models/kaggle-b3": str(tmp_path / "run-backbone"),
        "submission.csv": str(tmp_path / "submission.csv"),
        "explained-b3": str(tmp_path / "explained"),
    }
    sizes = {"--size 512": "--size 64", "--workers 16": "--workers 1", "EfficientNetB3": "EfficientNetB0"}
    small = {
        "cnn": [
            "model.stem_filters=4",
            "model.conv_layers=2",
            "model.block_filters=[4,8]",
            "model.dense_units=8",
            "train.epochs=1",
        ],
        "backbone": [
            "train.epochs=3",
            "model.dense_units=8",
            "early_stopping.start_from_epoch=0",
            "schedule.warmup_epochs=0",
        ],
    }
    for command in commands:
        arguments = shrunk(command, paths, sizes)
        if arguments[0] == "train":
            model = "backbone" if "model.name=backbone" in arguments else "cnn"
            settings = [
                *small[model],
                "train.batch_size=8",
                "train.epochs=3" if model == "backbone" else "train.epochs=1",
            ]
            arguments += [item for setting in settings for item in ("--set", setting)]
        result = invoke(*arguments)
        assert result.exit_code == 0, (arguments, result.output)
    submission = pd.read_csv(tmp_path / "submission.csv")
    assert sorted(submission["image"]) == sorted(path.stem for path in (source / "test").iterdir())
    assert set(submission["level"]) <= set(range(5))
    final = json.loads((tmp_path / "run-final" / "provenance.json").read_text())
    assert final["fitted_on"] == ["train", "val"] and (tmp_path / "run-final" / "metrics-test.json").is_file()
    explained = json.loads((tmp_path / "explained" / "explain.json").read_text())["figures"]  # the backbone's
    assert explained and all(
        row["true"] in range(5) and (tmp_path / "explained" / row["file"]).is_file() for row in explained
    )
