"""`dltrain prepare retina`: its options (Typer-annotated) and examples; imports nothing heavy, so
`dltrain --help` can list it. The work happens in `prepare.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from dltrain.tasks.limits import MAX_SEED

DEMO_PANEL = "demo SOURCE only"
EXAMPLES = (
    "dltrain prepare retina demo --out data/retina-demo --size 128 --mix balanced",
    "dltrain prepare retina kaggle --out data/retina --size 512 --graham",
)

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


def prepare_command(
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

    from dltrain.tasks.retina.meta import ImageOptions
    from dltrain.tasks.retina.prepare import prepare_retina_source

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
