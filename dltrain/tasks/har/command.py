"""`dltrain prepare har`: its options (Typer-annotated) and examples; imports nothing heavy, so
`dltrain --help` can list it. The work happens in `prepare.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dltrain.tasks.limits import MAX_READINGS, MAX_SEED

LONG_CSV_PANEL = "Long CSV SOURCE only"
HAPT_PANEL = "hapt SOURCE only"
EXAMPLES = (
    "dltrain prepare har hapt --out data/hapt",
    "dltrain prepare har 'UCI HAR Dataset' --out data/uci-har",
    "dltrain prepare har wisdm.csv --out data/wisdm --sample-rate 20",
)

SourceArgument = Annotated[
    str,
    typer.Argument(
        metavar="SOURCE",
        help="'hapt' (real UCI HAPT recordings from a package; a folder of that name is written ./hapt), a "
        "'UCI HAR Dataset' folder, a folder of class folders of CSV series (optionally under train/ validation/ "
        "test/), a long CSV file, or a UEA .ts file.",
    ),
]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="DATA_DIR to write (meta.json + one .npz per split).")]
WindowOption = Annotated[
    int | None,
    typer.Option(
        min=2, max=MAX_READINGS, help="Readings per window (default: 128; whole series for per-file CSV series)."
    ),
]
StepOption = Annotated[
    int | None,
    typer.Option(min=1, max=MAX_READINGS, help="Readings between window starts (default: window/2, 50% overlap)."),
]
ChannelsOption = Annotated[
    str | None,
    typer.Option(
        help="'uci' (9: body_acc, body_gyro, total_acc), 'raw' (6: total_acc, body_gyro), or comma-separated "
        "channel/column names."
    ),
]
TransitionsOption = Annotated[
    bool, typer.Option(help="Also learn the 6 postural transitions (12 classes).", rich_help_panel=HAPT_PANEL)
]
ValFractionOption = Annotated[
    float,
    typer.Option(
        help="Share of train subjects (or of the time span, when no subject is known) held out for validation."
    ),
]
TestFractionOption = Annotated[
    float, typer.Option(help="Share held out for testing where the source has no test split of its own.")
]
SeedOption = Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Seed of the subject split.")]
LabelColumnOption = Annotated[
    str | None, typer.Option(help="Label column (default: label or activity).", rich_help_panel=LONG_CSV_PANEL)
]
TimeColumnOption = Annotated[
    str | None, typer.Option(help="Time column (default: time or timestamp).", rich_help_panel=LONG_CSV_PANEL)
]
SubjectColumnOption = Annotated[
    str | None,
    typer.Option(help="Subject column (default: subject or user, if present).", rich_help_panel=LONG_CSV_PANEL),
]
PureWindowsOption = Annotated[
    bool,
    typer.Option(
        help="Keep only windows with one label throughout (default: the majority label).",
        rich_help_panel=LONG_CSV_PANEL,
    ),
]
SampleRateOption = Annotated[
    float | None, typer.Option(help="Sampling rate in Hz, recorded in meta.json for CSV sources.")
]
ForceOption = Annotated[bool, typer.Option(help="Replace an existing non-empty DATA_DIR.")]


def prepare_command(
    source: SourceArgument,
    out: OutOption,
    window: WindowOption = None,
    step: StepOption = None,
    channels: ChannelsOption = None,
    transitions: TransitionsOption = False,
    val_fraction: ValFractionOption = 0.2,
    test_fraction: TestFractionOption = 0.2,
    seed: SeedOption = 42,
    label_column: LabelColumnOption = None,
    time_column: TimeColumnOption = None,
    subject_column: SubjectColumnOption = None,
    pure_windows: PureWindowsOption = False,
    sample_rate: SampleRateOption = None,
    force: ForceOption = False,
) -> None:
    """Prepare activity-recognition windows: subject-wise splits, standardisation fitted on train."""
    from dltrain.tasks.har.prepare import prepare_har
    from dltrain.tasks.har.types import HarOptions

    options = HarOptions(
        window=window,
        step=step,
        channels=channels,
        transitions=transitions,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        label_column=label_column,
        time_column=time_column,
        subject_column=subject_column,
        pure_windows=pure_windows,
        sample_rate_hz=sample_rate,
    )
    prepare_har(source, out, options, force=force)
