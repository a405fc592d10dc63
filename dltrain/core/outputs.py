"""Where commands may write: the checks every `--out` goes through before anything is written."""

from __future__ import annotations

from pathlib import Path

from dltrain.core.errors import UsageError


def refuse_file_as_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")


def check_output_folder(out: Path, force: bool, what: str) -> None:
    """Refuse to overwrite a non-empty folder unless --force."""
    refuse_file_as_folder(out)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(
            f"--out {out} already holds files; choose another folder or pass --force to replace the {what}"
        )
