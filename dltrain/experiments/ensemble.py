"""`dltrain ensemble`: several runs of one task on the same data, as one run whose model averages
theirs (the class probabilities, or a regression head's outputs, whose cut points are then tuned
again on validation). The result is a run folder like any other, saved as one Keras model, so
evaluate, predict, compare, export and `runs` take it as they take a trained run."""

from __future__ import annotations

import logging
from pathlib import Path

from dltrain.core.errors import DataError, UsageError
from dltrain.core.outputs import RUN_DIR, check_output, output_lock
from dltrain.data.datadir import DataDir
from dltrain.runs.lifecycle import staged_run
from dltrain.runs.provenance import Provenance, first_provenance, git_commit, software_versions
from dltrain.runs.rundir import MODEL_FILE, STATUS_COMPLETE, Run
from dltrain.tasks import task_of

logger = logging.getLogger("dltrain")

# Fields of meta.json that may differ between two preparations of the same data.
PREPARATION_FIELDS = {"created", "dltrain_version"}


def open_members(run_dirs: list[Path]) -> list[Run]:
    """The member runs, complete, distinct, of one task, head and DATA_DIR (up to when it was prepared)."""
    if len(run_dirs) < 2:
        raise UsageError("an ensemble needs at least two RUN_DIRs")
    resolved = [Path(path).resolve() for path in run_dirs]
    repeated = next((path for index, path in enumerate(resolved) if path in resolved[:index]), None)
    if repeated is not None:
        raise UsageError(f"{repeated} is named twice; each member counts once")
    members = [Run.open(path) for path in run_dirs]
    first = members[0]
    for member in members[1:]:
        check_same_data(first, member)
        if member.config.model.head != first.config.model.head:
            raise UsageError(
                f"{member.path} has a {member.config.model.head} head and {first.path} a {first.config.model.head} "
                "one: members must give the same kind of output"
            )
    return members


def check_same_data(first: Run, member: Run) -> None:
    """Refuse, naming the first difference, a member trained on other data (task, classes, shapes,
    normalisation, image options, splits)."""
    ours = first.data_meta.model_dump(mode="json", exclude=PREPARATION_FIELDS)
    theirs = member.data_meta.model_dump(mode="json", exclude=PREPARATION_FIELDS)
    differing = next((key for key in ours if ours[key] != theirs.get(key)), None)
    if differing is not None:
        raise DataError(
            f"{member.path} was trained on other data than {first.path} ({differing} differs in their meta.json): "
            "members must share task, classes and data normalisation"
        )


def build_average(members: list[Run]):
    """One Keras model: every member's model on the same input, their outputs averaged. Each member
    sits in a Sequential of its own name, so that members of one architecture keep distinct names."""
    import keras

    models = [member.load_model() for member in members]
    first = models[0]
    inputs = keras.Input(shape=first.input_shape[1:], dtype=first.inputs[0].dtype, name="inputs")
    named = [keras.Sequential([model], name=f"member_{index}") for index, model in enumerate(models, start=1)]
    outputs = keras.layers.Average(name="mean", dtype="float32")([member(inputs) for member in named])
    return keras.Model(inputs, outputs, name="ensemble")


def ensemble(run_dirs: list[Path], out: Path, data_dir: Path | None = None, force: bool = False) -> Provenance:
    """Write the ensemble of `run_dirs` as the run `out`, scored on the validation split; returns its provenance."""
    from dltrain.runs.evaluation import headline, score_split

    members = open_members(run_dirs)
    first = members[0]
    data = DataDir.open(Path(data_dir) if data_dir is not None else first.data_dir)
    first.data_meta.check_compatible(data.meta, str(data.path))
    check_output(out, RUN_DIR, force, inputs=[data.path, *(member.path for member in members)])
    task = task_of(first.data_meta)
    provenance = first_provenance(data.path, first.data_meta, first.config, f"ensemble of {len(members)} runs")
    provenance.ensemble_of = [str(member.path.resolve()) for member in members]
    provenance.versions, provenance.git_commit = software_versions(), git_commit()
    provenance.backend = first.provenance.backend
    if any("val" in member.provenance.fitted_on for member in members):  # refits: validation is in-sample
        provenance.fitted_on = ["train", "val"]
    with output_lock(out), staged_run(out, first.config, provenance) as run:
        model = build_average(members)
        model.save(run.path / MODEL_FILE)
        kept = run.load_model()  # as evaluate and predict will load it
        provenance.parameters = int(kept.count_params())
        provenance.thresholds = task.tune(kept, data, run.config).get("thresholds")
        logger.info("ensemble of %d runs: %s parameters", len(members), f"{provenance.parameters:,}")
        metrics = score_split(kept, data, "val", run)
        provenance.status = STATUS_COMPLETE
        provenance.metrics = {"val": headline(metrics, task.headline)}
        run.save_provenance()
    return provenance
