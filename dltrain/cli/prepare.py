"""`dltrain prepare har|retina`: raw data -> a prepared DATA_DIR."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import Annotated, Literal

import typer

from dltrain.cli.common import examples, user_errors

logger = logging.getLogger("dltrain")
MAX_SEED = 2**32 - 1  # NumPy and TensorFlow take 32-bit seeds
MAX_READINGS = 1_000_000  # readings in a window or between window starts
LONG_CSV_PANEL = "Long CSV SOURCE only"
HAPT_PANEL = "hapt SOURCE only"
DEMO_PANEL = "demo SOURCE only"
PREPARE_HAR_EXAMPLES = examples(
    "dltrain prepare har hapt --out data/hapt",
    "dltrain prepare har 'UCI HAR Dataset' --out data/uci-har",
    "dltrain prepare har wisdm.csv --out data/wisdm --sample-rate 20",
)
PREPARE_RETINA_EXAMPLES = examples(
    "dltrain prepare retina demo --out data/retina-demo --size 128 --mix balanced",
    "dltrain prepare retina kaggle --out data/retina --size 512 --graham",
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
PrepareRetinaSourceArgument = Annotated[
    str,
    typer.Argument(
        metavar="SOURCE",
        help="'demo' (a simulated graded set, written in the Kaggle layout first), a Kaggle-layout folder "
        "(trainLabels.csv + train/, optional test/), or a course-layout folder (train/<level>/*.jpeg, "
        "validation/<level>/*.jpeg).",
    ),
]
PrepareRetinaOutOption = Annotated[
    Path, typer.Option("--out", "-o", help="DATA_DIR to write (images/, per-split CSVs, rejects.csv, meta.json).")
]
SizeOption = Annotated[int, typer.Option(help="Side of the square output images, in pixels.")]
GrahamOption = Annotated[bool, typer.Option(help="Graham's normalisation (4*img - 4*blur + 128) and a circular mask.")]
PrepareRetinaValFractionOption = Annotated[
    float, typer.Option(help="Share of patients held out for validation (both eyes together).")
]
PrepareRetinaTestFractionOption = Annotated[float, typer.Option(help="Share of patients held out for testing.")]
PrepareRetinaSeedOption = Annotated[
    int, typer.Option(min=0, max=MAX_SEED, help="Seed of the patient split (and of the demo set).")
]
WorkersOption = Annotated[int | None, typer.Option(min=1, max=512, help="Parallel processes (default: all cores).")]
PatientsOption = Annotated[
    int, typer.Option(help="Simulated training patients (two eyes each).", rich_help_panel=DEMO_PANEL)
]
TestPatientsOption = Annotated[
    int, typer.Option(help="Simulated patients in the unlabelled test/ folder.", rich_help_panel=DEMO_PANEL)
]
MixOption = Annotated[
    Literal["kaggle", "balanced"],
    typer.Option(help="Grade mix: kaggle (73.5/7.0/15.1/2.5/2.0 %) or balanced.", rich_help_panel=DEMO_PANEL),
]
DemoDirOption = Annotated[
    Path | None,
    typer.Option(
        help="Where the simulated Kaggle-layout set goes (default: raw/retina-demo beside --out).",
        rich_help_panel=DEMO_PANEL,
    ),
]
PrepareRetinaForceOption = Annotated[
    bool, typer.Option(help="Replace a DATA_DIR that holds other files or other image options.")
]


@user_errors
def prepare_har_command(
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
    from dltrain.data.har.prepare import prepare_har
    from dltrain.data.har.types import HarOptions

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
    log_next_step(out)


@user_errors
def prepare_retina_command(
    source: PrepareRetinaSourceArgument,
    out: PrepareRetinaOutOption,
    size: SizeOption = 512,
    graham: GrahamOption = False,
    val_fraction: PrepareRetinaValFractionOption = 0.2,
    test_fraction: PrepareRetinaTestFractionOption = 0.2,
    seed: PrepareRetinaSeedOption = 42,
    workers: WorkersOption = None,
    patients: PatientsOption = 300,
    test_patients: TestPatientsOption = 20,
    mix: MixOption = "kaggle",
    demo_dir: DemoDirOption = None,
    force: PrepareRetinaForceOption = False,
) -> None:
    """Prepare fundus photographs: crop to the fundus, square, resize; patient-wise splits; rejects listed."""
    import os

    from dltrain.data.retina.meta import ImageOptions
    from dltrain.data.retina.prepare import prepare_retina_source

    prepare_retina_source(
        source,
        out,
        ImageOptions.from_options(size=size, graham=graham),
        val_fraction,
        test_fraction,
        seed,
        workers or os.cpu_count() or 1,
        force,
        demo_dir=demo_dir,
        patients=patients,
        test_patients=test_patients,
        mix=mix,
    )
    log_next_step(out)


def log_next_step(data_dir: Path) -> None:
    logger.info("next: dltrain train %s  (the task's preset; --config and --set change it)", shlex.quote(str(data_dir)))
