"""The docs/ pages show only commands and options that exist, and their links lead somewhere.

README.md's bash lines run as written, in the README's order, in tests/test_help_examples.py (with
the help's examples, in one working folder). Placeholders (DATA_DIR, RUN_DIR, ...) are never in a
bash block: the README's synopsis is a ```text block, which is not run, so a placeholder put in a
bash block fails there instead of being skipped.

The docs/ pages (and the README's synopsis and inline `dltrain ...` spans) are not run: their
`dltrain` lines are checked for command names and options that exist, which needs no training.
Their relative links must name files that exist, and headings that exist where they name one.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from helpers.cli import app_command
from helpers.examples import command_lines

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]


def test_the_readme_starts_with_the_quick_start_and_keeps_its_examples_few():
    """Every README line runs in tests/test_help_examples.py, in the README's order."""
    lines = command_lines(README)
    assert lines[:3] == [
        "dltrain prepare har hapt --out data/hapt",
        "dltrain train data/hapt --out models/har-gru",
        "dltrain evaluate models/har-gru --split test",
    ], "the quick start comes first"
    assert len(lines) <= 25, "keep the README's examples few: each one runs in the tests"


def check_line(line: str) -> str | None:
    """What is wrong with a documented command line, if anything: a command that does not exist,
    or an option its command (or dltrain itself) does not have. In a synopsis `a|b` stands for
    either word and `[...]` for an optional part."""
    root = app_command()
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
