"""Blending both eyes of a patient (`dltrain blend`) on the simulated demo set: the test split's
kappa per image and blended, for several training seeds, without TTA and with the dihedral TTA.

    python bench/retina_blend.py            # 3 seeds of the demo run (at most about 6 minutes on 2 cores)
    python bench/retina_blend.py --smoke    # tiny sizes, one seed, to check the script still runs

Runs the real commands as `make demo-retina` does: `prepare retina demo --size 128 --mix balanced`
and `train --config retina-cnn --set train.seed=S` in fresh processes, then what `blend --tta MODE`
(fitted on the validation split only) and `evaluate --split test --tta MODE` call, in this process
(only kappa is measured here; each fresh process would import TensorFlow once more). The simulated
patients' two eyes have correlated grades (the same grade or one apart), as real patients' mostly do.
"""

from __future__ import annotations

import subprocess

import numpy as np
from common import DLTRAIN, Report, bench_arguments

MODES = ("none", "dihedral")


def run(*arguments) -> str:
    return subprocess.run([*DLTRAIN, *map(str, arguments)], check=True, capture_output=True, text=True).stdout


def main() -> None:
    from dltrain.core.console import configure_logging, import_tensorflow_quietly
    from dltrain.inference.blend import blend_run
    from dltrain.runs.evaluation import evaluate_run

    configure_logging()  # dltrain's progress lines as the commands print them, TensorFlow's start-up quiet
    import_tensorflow_quietly()

    arguments, work = bench_arguments(__doc__, "tiny sizes, one seed", "retina-blend")
    patients, size, seeds = (12, 64, [1]) if arguments.smoke else (300, 128, [1, 2, 3])
    smoke = ["--set", "train.epochs=1", "--set", "model.conv_layers=1"] if arguments.smoke else []
    data = work / "data"
    run("prepare", "retina", "demo", "--out", data, "--demo-dir", work / "raw", "--size", size, "--mix", "balanced",
        "--patients", patients, "--force")  # fmt: skip
    report = Report(
        "Blending both eyes: test kappa per image and blended (simulated demo set)",
        f"python bench/retina_blend.py{' --smoke' if arguments.smoke else ''}",
        ["seed", "TTA", "kappa per image", "kappa blended", "gain"],
    )
    modes = MODES[:1] if arguments.smoke else MODES
    gains = {mode: [] for mode in modes}
    for seed in seeds:
        run_dir = work / f"run-{seed}"
        run("train", data, "--out", run_dir, "--config", "retina-cnn", "--set", f"train.seed={seed}", "--force", *smoke)
        for mode in modes:
            blend_run(run_dir, None, mode)
            metrics = evaluate_run(run_dir, None, "test", mode)
            own, blended = metrics["quadratic_weighted_kappa"], metrics["blended_quadratic_weighted_kappa"]
            report.add(seed, mode, own, blended, blended - own)
            gains[mode].append(blended - own)
    for mode, values in gains.items():
        report.notes.append(
            f"TTA {mode}: mean gain {np.mean(values):+.4f}, standard deviation "
            f"{np.std(values, ddof=1) if len(values) > 1 else 0:.4f} "
            f"over {len(values)} seed(s)"
        )
    report.notes.append(
        f"{patients} patients, balanced grades, {size} px; the blend is fitted on the validation split with "
        "patient-grouped folds, the test split is scored once per mode."
    )
    report.emit(arguments.markdown)


if __name__ == "__main__":
    main()
