"""README.md's examples run as written; the docs/ pages show only commands and options that exist,
and their links lead somewhere.

Every `dltrain ...` line of README.md's ```bash blocks is run, in the order the README shows them,
in a working folder (tmp_path) that holds the small inputs they name and no earlier line makes (a
`UCI HAR Dataset` folder, a photograph): each finds the data and runs the lines before it made, and
each must exit 0. Placeholders (DATA_DIR, RUN_DIR, ...) are never in a bash block: the README's
synopsis is a ```text block, which is not run, so a placeholder put in a bash block fails here
instead of being skipped. No line is skipped.

Only budgets are appended, the same as for the help examples (tests/test_help_examples.py): fewer
`hapt` windows, small images and few simulated patients, one epoch of a small model, and the
baselines of `reproduce` shrunk alike; the paths stay as written, relative to the working folder.

The docs/ pages (and the README's synopsis and inline `dltrain ...` spans) are not run: their
`dltrain` lines are checked for command names and options that exist, which needs no training.
Their relative links must name files that exist, and headings that exist where they name one.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer
from helpers.cli import invoke
from helpers.data import fundus_jpeg, write_uci_folder
from helpers.examples import budget, small_baselines

import dltrain.experiments.reproduce as reproduce_module
from dltrain.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]


def command_lines(path: Path, kinds=("bash",)) -> list[str]:
    """The `dltrain ...` lines of the page's blocks of those kinds: continuation lines joined,
    comments and leading environment assignments (NAME=value) dropped."""
    pattern = r"```(?:" + "|".join(kinds) + r")\n(.*?)```"
    blocks = re.findall(pattern, path.read_text(), flags=re.DOTALL)
    lines = []
    for line in "\n".join(blocks).replace("\\\n", " ").splitlines():
        line = re.sub(r"^(\s*[A-Z_]+=\S+\s+)+", "", line.split(" #")[0]).strip()
        if re.match(r"dltrain(\s|$)", line):
            lines.append(line)
    return lines


def test_the_readme_examples_run_in_order(tmp_path, monkeypatch):
    lines = command_lines(README)
    assert lines[:3] == [
        "dltrain prepare har hapt --out data/hapt",
        "dltrain train data/hapt --out models/har-gru",
        "dltrain evaluate models/har-gru --split test",
    ], "the quick start comes first"
    assert len(lines) <= 25, "keep the README's examples few: each one runs here"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(reproduce_module, "load_baselines", small_baselines)
    write_uci_folder(tmp_path)  # tmp_path / "UCI HAR Dataset"
    fundus_jpeg(tmp_path / "photo.jpeg", level=2)
    for line in lines:
        words = shlex.split(line)[1:]
        result = invoke(*words, *budget(words))
        assert result.exit_code == 0, f"{line}\n    exit {result.exit_code}: {result.output.strip()[-1500:]}"


def check_line(line: str) -> str | None:
    """What is wrong with a documented command line, if anything: a command that does not exist,
    or an option its command (or dltrain itself) does not have. In a synopsis `a|b` stands for
    either word and `[...]` for an optional part."""
    root = typer.main.get_command(app)
    words = [word.strip("[]").split("|")[0] for word in shlex.split(line)[1:]]
    command, path = root, ["dltrain"]
    for word in words:
        if not hasattr(command, "commands") or word.startswith("-"):
            break
        if word not in command.commands:
            return f"no command {' '.join(path)} {word}"
        command, path = command.commands[word], [*path, word]
    shown = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line))
    existing = {"--help"} | {
        opt for owner in (root, command) for param in owner.params for opt in param.opts + param.secondary_opts
    }
    if shown - existing:
        return f"{sorted(shown - existing)} not options of {' '.join(path)}"
    return None


def test_the_docs_show_only_commands_and_options_that_exist():
    wrong = []
    for page in PAGES:
        inline = re.findall(r"(?<!`)`(dltrain [^`\n]+)`", page.read_text())
        for line in [*command_lines(page, ("bash", "text")), *inline]:
            problem = check_line(line)
            if problem:
                wrong.append(f"{page.relative_to(ROOT)}: {line}\n    {problem}")
    assert not wrong, "\n".join(wrong)


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_docs_links_lead_somewhere():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, fragment = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif fragment and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.MULTILINE)
                if fragment not in {anchor(heading) for heading in headings}:
                    broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
