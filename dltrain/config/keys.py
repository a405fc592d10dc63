"""Every configuration key as `dltrain config keys` lists it: type, default, allowed values and
description, read from the schema itself (`config/schema.py`), so the list never drifts from it."""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, astuple, dataclass
from typing import Any, Literal

from pydantic.fields import FieldInfo

from dltrain.config.schema import DEFAULT_MODEL, MODEL_CONFIGS, Config, optimizer_names
from dltrain.core.errors import UsageError

BOUND_SYMBOLS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


@dataclass(frozen=True)
class KeyInfo:
    key: str  # section.name, as --set takes it
    type: str
    default: str
    allowed: str  # the values or the range it takes; "" where any value of its type goes
    description: str
    models: tuple[str, ...] = ()  # model section: the models that have the key (empty: every section but model)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "models": list(self.models)}


def shown(value: Any) -> str:
    """A default as it is written in YAML or with --set."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(shown(item) for item in value) + "]"
    return str(value)


def type_name(annotation: Any) -> str:
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return shown(arguments[0]) if len(arguments) == 1 else "choice"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(argument) for argument in arguments).replace("NoneType", "null")
    if origin is list:
        return f"list[{type_name(arguments[0])}]"
    if origin is typing.Annotated:
        return type_name(arguments[0])
    return getattr(annotation, "__name__", str(annotation))


def choices(annotation: Any) -> list[str]:
    """The values a Literal (or a union with Literals and bool) allows; [] for open types."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return [shown(argument) for argument in arguments]
    if origin in (typing.Union, types.UnionType) and any(typing.get_origin(part) is Literal for part in arguments):
        return [value for part in arguments for value in (choices(part) or (["true", "false"] if part is bool else []))]
    return []


def bounds(field: FieldInfo) -> str:
    """`0 <= x < 1` from the field's constraints ("" without any)."""
    found = {name: getattr(item, name) for item in field.metadata for name in BOUND_SYMBOLS if hasattr(item, name)}
    lower = next(((name, found[name]) for name in ("ge", "gt") if name in found), None)
    upper = next(((name, found[name]) for name in ("le", "lt") if name in found), None)
    if lower and upper:
        below = BOUND_SYMBOLS[lower[0]].replace(">", "<")
        return f"{shown(lower[1])} {below} x {BOUND_SYMBOLS[upper[0]]} {shown(upper[1])}"
    if lower or upper:
        name, value = lower or upper
        return f"x {BOUND_SYMBOLS[name]} {shown(value)}"
    return ""


def key_info(section: str, name: str, field: FieldInfo, models: tuple[str, ...] = ()) -> KeyInfo:
    default = field.default_factory() if field.default_factory is not None else field.default
    allowed = ", ".join(choices(field.annotation)) or bounds(field)
    if field.annotation is bool:
        allowed = "true, false"
    if (section, name) == ("optimizer", "name"):
        allowed = ", ".join(optimizer_names())
    if (section, name) == ("model", "name"):
        allowed = ", ".join(MODEL_CONFIGS)
    description = field.description or ""
    return KeyInfo(f"{section}.{name}", type_name(field.annotation), shown(default), allowed, description, models)


def model_keys(model: str | None) -> list[KeyInfo]:
    """The model section's keys: of one model, or of every model (a key whose type, default or
    values differ between models gets one row per variant, naming its models)."""
    names = [model] if model else list(MODEL_CONFIGS)
    variants: dict[tuple, list[str]] = {}
    for model_name in names:
        for name, field in MODEL_CONFIGS[model_name].model_fields.items():
            info = key_info("model", name, field)
            if name == "name":  # each model's schema fixes its own name; the key chooses among them
                info = KeyInfo(info.key, "choice", model or DEFAULT_MODEL, info.allowed, info.description)
            variants.setdefault(astuple(info)[:5], []).append(model_name)
    rows = [KeyInfo(*variant, tuple(models)) for variant, models in variants.items()]
    return sorted(rows, key=lambda row: row.key != "model.name")  # the key that decides the others first


def config_keys(model: str | None = None) -> list[KeyInfo]:
    """Every key, section by section; the model section of `model` only, when given."""
    if model is not None and model not in MODEL_CONFIGS:
        raise UsageError(f"--model {model}: choose one of {', '.join(MODEL_CONFIGS)}")
    rows = model_keys(model)
    for section, section_field in Config.model_fields.items():
        if section != "model":
            rows += [key_info(section, name, field) for name, field in section_field.annotation.model_fields.items()]
    return rows


HEADERS = ["key", "type", "default", "allowed", "description"]


def key_cells(rows: list[KeyInfo], every_model: bool) -> list[list[str]]:
    """One line of cells per key; listing every model, a key of some models only names them."""
    return [
        [
            row.key,
            row.type,
            row.default,
            row.allowed,
            (f"({', '.join(row.models)}) " if every_model and 0 < len(row.models) < len(MODEL_CONFIGS) else "")
            + row.description,
        ]
        for row in rows
    ]


def keys_table(rows: list[KeyInfo], every_model: bool):
    """For a terminal: the key whole on one line; its type, default and values, then its description,
    beside it (two columns read well at 80 columns)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title="config keys: --set section.key=value, or section: {key: value} in a YAML file",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    table.add_column("key", no_wrap=True, style="bold")
    table.add_column("type = default; allowed values / description", ratio=1)
    section = None
    for row, cells in zip(rows, key_cells(rows, every_model)):
        if section is not None and row.key.split(".")[0] != section:
            table.add_section()
        section = row.key.split(".")[0]
        values = f"; {row.allowed}" if row.allowed and row.type != "bool" else ""
        text = Text(f"{row.type} = {row.default}{values}", style="cyan")
        text.append(f"\n{cells[4]}" if cells[4] else "", style="default")
        table.add_row(row.key, text)  # Text: values such as [] are not markup
    return table


def keys_text(rows: list[KeyInfo], every_model: bool) -> str:
    """Aligned columns for pipes and files; the description last, unwrapped."""
    lines = [HEADERS, *key_cells(rows, every_model)]
    widths = [max(len(line[index]) for line in lines) for index in range(4)]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + f"  {line[4]}".rstrip() + "\n"
        for line in lines
    )
