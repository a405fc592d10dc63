"""Loading the configuration: defaults < preset or YAML file < `--set key=value`, validated once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dltrain.config.presets import preset_names, preset_text
from dltrain.config.schema import MODEL_CONFIGS, Config
from dltrain.core.errors import UsageError, describe_validation_error

logger = logging.getLogger("dltrain")


def _read_yaml_mapping(text: str, origin: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UsageError(f"{origin}: not valid YAML ({str(error).splitlines()[0]})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UsageError(f"{origin}: expected a mapping of sections (model:, train:, ...), got {type(loaded).__name__}")
    return loaded


def read_config_source(name_or_file: str) -> dict[str, Any]:
    """A preset shipped with the package, or a YAML file on disk."""
    path = Path(name_or_file)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise UsageError(f"config file {path} does not exist (presets: {', '.join(preset_names())})")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not a text file (a YAML config must be UTF-8 text)") from None
        return _read_yaml_mapping(text, str(path))
    text = preset_text(name_or_file)
    if text is None:
        raise UsageError(f"unknown config {name_or_file!r}: not a file, and not a preset ({', '.join(preset_names())})")
    return _read_yaml_mapping(text, f"preset {name_or_file}")


def parse_override(assignment: str) -> tuple[list[str], Any]:
    """`model.units=128` -> (["model", "units"], 128); the value is read as YAML (numbers, booleans)."""
    key, separator, raw_value = assignment.partition("=")
    if not separator or not key.strip():
        raise UsageError(f"--set {assignment!r}: expected key=value, e.g. --set train.epochs=10")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError:
        value = raw_value
    return key.strip().split("."), value


def _apply_override(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for depth, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UsageError(f"--set {'.'.join(path)}: {'.'.join(path[: depth + 1])} is not a section")
        node = child
    node[path[-1]] = value


def flat_settings(tree: dict, prefix: str = "") -> dict[str, object]:
    """{"train": {"epochs": 3}} -> {"train.epochs": 3}."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_settings(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def section_classes() -> dict[str, list[type]]:
    """Each section's schema classes: one for most, one per model for `model`."""
    sections: dict[str, list[type]] = {}
    for section_name, section_field in Config.model_fields.items():
        sections[section_name] = list(MODEL_CONFIGS.values()) if section_name == "model" else [section_field.annotation]
    return sections


def valid_keys() -> list[str]:
    keys = []
    for section_name, classes in section_classes().items():
        for schema in classes:
            keys += [f"{section_name}.{key}" for key in schema.model_fields if f"{section_name}.{key}" not in keys]
    return keys


def closest_keys(key: str, count: int = 3) -> list[str]:
    import difflib

    keys = valid_keys()
    close = difflib.get_close_matches(key, keys, n=count, cutoff=0.6)
    # A bare key name (`epochs`) or a section typo (`trainer.epochs`) still finds its full key.
    leaf = key.rsplit(".", 1)[-1]
    by_leaf = [candidate for candidate in keys if candidate.rsplit(".", 1)[-1] == leaf]
    return list(dict.fromkeys(close + by_leaf))[:count]


def _error_location(error: ValidationError) -> list[str]:
    """The key of the first problem, without the model union's tag (`model.gru.units` -> `model.units`)."""
    location = [str(part) for part in error.errors()[0]["loc"]]
    if len(location) > 1 and location[0] == "model" and location[1] in MODEL_CONFIGS:
        del location[1]
    return location


def _describe_validation_error(error: ValidationError, origin: str) -> str:
    first = error.errors()[0]
    key = ".".join(_error_location(error))
    if first["type"] == "extra_forbidden":
        suggestions = closest_keys(key)
        hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else ""
        return f"{origin}: unknown config key {key!r}{hint} ('dltrain config keys' lists every key)"
    return f"{origin}: {describe_validation_error(error, _error_location(error))}"


# Warm-ups counted in epochs: (section, key, the schedule it applies to or None for any).
WARM_UPS = (("early_stopping", "start_from_epoch", None), ("schedule", "warmup_epochs", "cosine"))


def _default(section: str, key: str) -> Any:
    return Config.model_fields[section].annotation.model_fields[key].default


def frozen_epochs(tree: dict[str, Any]) -> int:
    frozen = tree.get("train", {}).get("freeze_backbone_epochs", 0) if isinstance(tree.get("train"), dict) else 0
    return frozen if isinstance(frozen, int) and not isinstance(frozen, bool) and frozen >= 0 else 0


def fit_warm_ups_to_epochs(tree: dict[str, Any], explicit: set[str]) -> None:
    """A preset's warm-up that is as long as the whole run (e.g. 10 warm-up epochs with
    `--set train.epochs=2`) is shortened to a quarter of the run, with one logged line; the value
    used is what config.yaml records. A warm-up the user set with --set is kept, and a conflict
    with it is refused by validation as before."""
    epochs = (
        tree.get("train", {}).get("epochs", _default("train", "epochs"))
        if isinstance(tree.get("train", {}), dict)
        else None
    )
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        return  # validation reports the bad value itself
    for section, key, schedule in WARM_UPS:
        values = tree.get(section, {})
        if not isinstance(values, dict) or f"{section}.{key}" in explicit:
            continue
        schedule_name = (
            tree.get("schedule", {}).get("name", _default("schedule", "name"))
            if isinstance(tree.get("schedule"), dict)
            else None
        )
        warm_up = values.get(key, _default(section, key))
        span = epochs - (
            frozen_epochs(tree) if schedule else 0
        )  # a schedule spans the epochs after a frozen backbone's
        if schedule is not None and schedule_name != schedule or not isinstance(warm_up, int) or warm_up < span:
            continue
        tree.setdefault(section, {})[key] = max(span, 0) // 4
        logger.info(
            "%s.%s %d is not below the run's %d epochs: using %d (a quarter of them)",
            section,
            key,
            warm_up,
            span,
            max(span, 0) // 4,
        )


def keep_keys_of_model(tree: dict[str, Any], new_name: Any, explicit: set[str]) -> None:
    """`--set model.name=X` over a preset of another model: the preset's keys that model X does not
    have (e.g. a CNN's conv_layers under a backbone) are dropped with one logged line, so switching
    the model needs no list of keys to unset; the shared ones (head, dropout, ...) are kept."""
    model = tree.get("model")
    new_model = MODEL_CONFIGS.get(new_name) if isinstance(new_name, str) else None
    if not isinstance(model, dict) or new_model is None or model.get("name") == new_name:
        return
    dropped = [key for key in model if key not in new_model.model_fields and f"model.{key}" not in explicit]
    for key in dropped:
        del model[key]
    if dropped:
        logger.info(
            "model.name %s: the keys of model %s it lacks are dropped (%s)",
            new_name,
            model.get("name"),
            ", ".join(dropped),
        )


def load_config(name_or_file: str | None, overrides: list[str] | None = None) -> Config:
    """Layer the defaults, a preset or file, then `--set` overrides; validate once at the end."""
    tree: dict[str, Any] = read_config_source(name_or_file) if name_or_file else {}
    origin = f"config {name_or_file}" if name_or_file else "config"
    explicit = set()
    for assignment in overrides or []:
        path, value = parse_override(assignment)
        if path == ["model", "name"]:
            keep_keys_of_model(tree, value, explicit)
        _apply_override(tree, path, value)
        explicit.add(".".join(path))
    fit_warm_ups_to_epochs(tree, explicit)
    if overrides:
        origin = f"{origin} with --set"
    return validate_config(tree, origin)


def validate_config(tree: dict[str, Any], origin: str, saved_run: bool = False) -> Config:
    """The typed config, or one UsageError naming the first bad key; `saved_run` reads a run's own
    config.yaml, written by an earlier dltrain (see `schema.model_section`)."""
    try:
        return Config.model_validate(tree, context={"saved_run": saved_run})
    except ValidationError as error:
        raise UsageError(_describe_validation_error(error, origin)) from None
