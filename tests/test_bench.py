"""Every bench script still runs (smoke sizes) and writes its Markdown section; CI never judges
the numbers, which mean nothing at these sizes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from suite import SCRIPTS  # noqa: E402


def test_every_bench_script_runs_in_smoke_mode_and_the_suite_writes_results(tmp_path):
    """`suite.py --smoke` as `make bench` runs it: every script in its own process, in one shared working
    folder (HAPT and the photographs prepared once), each writing its Markdown section into RESULTS.md."""
    results = tmp_path / "RESULTS.md"
    command = [sys.executable, str(BENCH / "suite.py"), "--smoke", "--work", str(tmp_path / "work")]
    result = subprocess.run(
        [*command, "--results", str(results)],
        capture_output=True,
        text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", **os.environ},
    )
    assert result.returncode == 0, (result.stdout[-1500:], result.stderr[-3000:])  # `== name`: the failing script
    text = results.read_text()
    for expected in ("# Bench results", "- machine:", "- software: Python", "tensorflow"):
        assert expected in text
    sections = text.split("\n## ")[1:]
    assert len(sections) == len(SCRIPTS), [section.splitlines()[0] for section in sections]
    for section in sections:
        assert "| --- |" not in section and "|---|" in section, section[:200]
        table_rows = [line for line in section.splitlines() if line.startswith("| ")]
        assert len(table_rows) >= 2, section[:200]  # the header and at least one measured row


def test_scaled_data_dir_repeats_the_train_split_only(tmp_path):
    import json

    import numpy as np
    from common import scaled_data_dir

    from dltrain.tasks.har.meta import Split, write_split

    source = tmp_path / "source"
    source.mkdir()
    for name, count in (("train", 10), ("val", 4)):
        write_split(
            source,
            name,
            Split(np.zeros((count, 8, 3)), np.arange(count) % 2, np.arange(count).astype(str), np.zeros(count, int)),
        )
    (source / "meta.json").write_text(json.dumps({"task": "har", "splits": {"train": 10, "val": 4}}))
    scaled = scaled_data_dir(source, tmp_path / "x2.5", 2.5)
    meta = json.loads((scaled / "meta.json").read_text())
    assert meta["splits"] == {"train": 25, "val": 4}
    with np.load(scaled / "train.npz") as train:
        assert len(train["y"]) == 25 and list(train["ids"][:12]) == [str(index) for index in range(10)] + ["0", "1"]


@pytest.mark.slow
def test_the_peer_bench_runs_in_smoke_mode(tmp_path):
    """bench/peer.py against aeon's MiniRocket (the `bench` extra; skipped where aeon is not installed)."""
    pytest.importorskip("aeon")
    markdown = tmp_path / "peer.md"
    command = [sys.executable, str(BENCH / "peer.py"), "--smoke", "--work", str(tmp_path / "work")]
    result = subprocess.run([*command, "--markdown", str(markdown)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in markdown.read_text().splitlines() if line.startswith("| basicmotions")]
    assert [row.split(" | ")[1] for row in rows] == ["MiniRocket (random_state 0)"] * 2 + ["default preset"]
