"""A task is one folder: a third task, written here as a package of its own in a temporary folder
(classify sine waves as slow or fast from a CSV of series), is found through the `dltrain.tasks`
entry point of an installed distribution and runs prepare -> train -> evaluate -> predict through
the command line, without a line of dltrain changed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PACKAGE = {
    "__init__.py": '''
        """Sine waves, slow or fast: a task outside dltrain."""
        from pathlib import Path

        from dltrain.tasks.registry import TaskCard, register_task
        from sinewaves.command import prepare_command


        def claims(source: str) -> int:
            return 2 if source.endswith(".sines.csv") else 0


        register_task(
            TaskCard("sine", prepare_command, ("dltrain prepare sine waves.sines.csv --out data/sine",), claims, {}),
            task="sinewaves.task:TASK",
            meta="sinewaves.meta:SineMeta",
            presets={"sine-gru": Path(__file__).parent / "sine-gru.yaml"},
        )
    ''',
    "command.py": '''
        from pathlib import Path
        from typing import Annotated

        import typer


        def prepare_command(
            source: Annotated[str, typer.Argument(help="A CSV: id, frequency, then the readings.")],
            out: Annotated[Path, typer.Option("--out", help="DATA_DIR to write.")],
        ) -> None:
            """Prepare sine waves: the first 60 % train, 20 % val, 20 % test."""
            from sinewaves.meta import prepare

            prepare(source, out)
    ''',
    "meta.py": """
        from dataclasses import dataclass
        from pathlib import Path
        from typing import Literal

        import numpy as np
        import pandas as pd

        from dltrain.core.errors import DataError
        from dltrain.data.datadir import write_meta
        from dltrain.data.meta import MetaBase


        @dataclass
        class Split:
            x: np.ndarray
            y: np.ndarray
            ids: np.ndarray


        class SineMeta(MetaBase):
            task: Literal["sine"] = "sine"

            def read_split(self, folder: Path, name: str) -> Split:
                with np.load(Path(folder) / f"{name}.npz", allow_pickle=False) as arrays:
                    return Split(arrays["x"], arrays["y"], arrays["ids"])


        def read_series(source: str) -> tuple[np.ndarray, pd.Series, np.ndarray]:
            if not Path(source).is_file():
                raise DataError(f"{source}: no such file")
            table = pd.read_csv(source)
            x = table.drop(columns=["id", "frequency"]).to_numpy("float32")[:, :, None]
            return x, table["frequency"], table["id"].to_numpy().astype(str)


        def prepare(source: str, out: Path) -> None:
            x, frequency, ids = read_series(source)
            classes = sorted(frequency.unique())
            y = frequency.map(classes.index).to_numpy("int64")
            cuts = {"train": slice(0, 60), "val": slice(60, 80), "test": slice(80, None)}
            out.mkdir(parents=True)
            for name, rows in cuts.items():
                np.savez(out / f"{name}.npz", x=x[rows], y=y[rows], ids=ids[rows])
            splits = {name: len(y[rows]) for name, rows in cuts.items()}
            write_meta(out, SineMeta(classes=classes, input_shape=list(x.shape[1:]), splits=splits))
    """,
    "task.py": """
        import numpy as np
        import pandas as pd

        from dltrain.data.feeds import array_feeds
        from dltrain.tasks.base import ScoringInputs, Task
        from sinewaves.meta import read_series


        class SineTask(Task):
            name = "sine"
            preset = "sine-gru"
            models = ("gru",)
            submission_columns = ("id", "frequency")

            def training_feeds(self, data, config, batch_size, context):
                return array_feeds(data, config, batch_size, context)

            def scoring_inputs(self, data, split):
                series = data.split(split)
                return ScoringInputs(series.x, series.y, series.ids)

            def predict(self, run, request):
                if request.data is not None:
                    series = request.data.split(request.split)
                    x, ids = series.x, series.ids
                else:
                    x, _, ids = read_series(request.source)
                scores = request.load_model(x.shape[1:], request.source).predict(x, verbose=0)
                classes = np.asarray(run.data_meta.classes)
                return pd.DataFrame({"id": ids, "frequency": classes[scores.argmax(axis=1)]})


        TASK = SineTask()
    """,
    "sine-gru.yaml": """
        model: {name: gru, units: 16, layers: 1}
        train: {epochs: 12, batch_size: 10}
        optimizer: {name: adam, learning_rate: 0.01}
    """,
}

JOURNEY = """
import sys
import traceback
from typer.testing import CliRunner
from dltrain.cli.app import app

for line in sys.argv[1:]:
    result = CliRunner().invoke(app, line.split())
    print(f"$ dltrain {line}\\n{result.output}{result.stderr}")
    if result.exit_code != 0:
        if result.exc_info and not isinstance(result.exception, SystemExit):
            traceback.print_exception(*result.exc_info)
        sys.exit(f"exit {result.exit_code}: dltrain {line}")
"""


def write_package(root: Path) -> None:
    """The package, and the distribution metadata that declares its entry point, as pip would install them."""
    (root / "sinewaves").mkdir(parents=True)
    for name, text in PACKAGE.items():
        (root / "sinewaves" / name).write_text(textwrap.dedent(text).lstrip())
    info = root / "sinewaves-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sinewaves\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dltrain.tasks]\nsine = sinewaves\n")


def write_waves(path: Path, seed: int) -> None:
    """100 series of 32 readings: slow (1 cycle) or fast (4 cycles), random phase and a little noise."""
    rng = np.random.default_rng(seed)
    fast = rng.random(100) < 0.5
    time = np.linspace(0, 2 * np.pi, 32)
    phase = rng.uniform(0, 2 * np.pi, (100, 1))
    waves = np.sin(np.where(fast[:, None], 4, 1) * time + phase) + rng.normal(0, 0.1, (100, 32))
    table = pd.DataFrame(waves, columns=[f"r{index}" for index in range(32)])
    table.insert(0, "frequency", np.where(fast, "fast", "slow"))
    table.insert(0, "id", [f"wave{index}" for index in range(100)])
    table.to_csv(path, index=False)


def test_a_task_in_a_package_of_its_own_runs_the_whole_journey(tmp_path: Path):
    write_package(tmp_path / "site")
    write_waves(tmp_path / "waves.sines.csv", seed=0)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), *sys.path])}
    lines = [
        "prepare --help",
        "prepare sine waves.sines.csv --out data/sine",
        "train data/sine --out models/sine",
        "evaluate models/sine --split test --json",
        "predict models/sine waves.sines.csv --out predictions.csv",
        "predict models/sine data/sine --out test.csv",
    ]
    done = subprocess.run(
        [sys.executable, "-c", JOURNEY, *lines], cwd=tmp_path, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "sine" in done.stdout.split("$ dltrain prepare sine")[0]  # listed beside har and retina
    assert (tmp_path / "models/sine/config.yaml").read_text().count("units: 16") == 1  # the task's own preset
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert list(predictions.columns) == ["id", "frequency"] and len(predictions) == 100
    truth = pd.read_csv(tmp_path / "waves.sines.csv")["frequency"]
    assert (predictions["frequency"] == truth).mean() > 0.6  # it learned in 12 epochs of 60 series
    assert len(pd.read_csv(tmp_path / "test.csv")) == 20  # a DATA_DIR as INPUT: its test split


def test_a_broken_task_plugin_is_skipped_with_a_warning(tmp_path: Path):
    write_package(tmp_path / "site")
    (tmp_path / "site/sinewaves/__init__.py").write_text("raise ImportError('a dependency is missing')\n")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), *sys.path])}
    script = "from dltrain.tasks import TASKS; print(TASKS.names())"
    done = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "['har', 'retina']"
    assert "task plugin sine (sinewaves) not loaded: a dependency is missing" in done.stderr


def test_a_lazy_registration_that_cannot_load_is_one_line_and_stays_listed():
    from dltrain.core.errors import UsageError
    from dltrain.core.registry import Registry

    registry = Registry("task")
    registry.register_lazy("ecg", "no_such_package.task:TASK")
    for _ in range(2):  # still registered after the first failure, and refused the same way
        with pytest.raises(UsageError, match=r"task 'ecg' could not be loaded \(no_such_package.task:TASK\)"):
            registry.get("ecg")
    assert registry.names() == ["ecg"]
    with pytest.raises(ValueError, match="is not 'module:attribute'"):
        registry.register_lazy("x", "module:")


def test_a_task_claiming_a_taken_name_registers_nothing():
    from dltrain.tasks import CARDS, TASKS
    from dltrain.tasks.registry import TaskCard, register_task

    card = TaskCard("ecg", print, (), lambda source: 0, source_words={"hapt": "data/ecg"})
    with pytest.raises(ValueError, match="claims names already taken: SOURCE word 'hapt'"):
        register_task(card, task="ecg.task:TASK", meta="ecg.meta:EcgMeta", presets={"har-gru": "ecg.yaml"})
    assert "ecg" not in CARDS and "ecg" not in TASKS
