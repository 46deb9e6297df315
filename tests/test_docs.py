"""The README stays a front page, its set-up commands are the ones CI runs, and no link in the docs is dead."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def bash_block_after(heading: str, lines: list[str]) -> tuple[int, str]:
    """(line number, command) of the first ```bash block under `heading`: the README's set-up commands."""
    start = lines.index(heading)
    opening = lines.index("```bash", start)
    return opening + 1, lines[opening + 1]


def test_the_readme_is_a_front_page_of_at_most_15_kb() -> None:
    # A newcomer reads it in five minutes; tables of measurements and every error row live in docs/.
    assert len(README.read_bytes()) <= 15_000


def test_both_set_up_commands_are_on_the_first_screen() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    run_at, run = bash_block_after("## Install and run", lines)
    test_at, test = bash_block_after("## Install and test", lines)
    assert run_at < 60 and test_at < 60
    assert run.startswith("python3 -m venv .venv") and run.endswith("&& ddpg-tui")
    assert test.startswith("python3 -m venv .venv") and test.endswith("&& pytest")


def test_ci_runs_exactly_the_readmes_install_and_test_command() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    _, test = bash_block_after("## Install and test", lines)
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert test in ci


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.lstrip("#").strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors_of(page: Path) -> set[str]:
    return {github_anchor(line) for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_every_relative_link_reaches_a_file_and_its_heading(page: Path) -> None:
    dead = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors_of(file)):
            dead.append(target)
    assert dead == []


def readme_cli_commands() -> list[str]:
    """The commands of the README's command-line list, each cut from its description."""
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- section: cli -->", 1)[1].split("<!-- end: cli -->", 1)[0]
    return [re.split(r"\s{2,}", line)[0] for line in block.splitlines() if line.startswith("ddpg-tui")]


def test_every_command_on_the_front_page_parses() -> None:
    # Parsing only (nothing runs): a renamed option or command makes the front page lie.
    from ddpg_tui.cli.main import build_parser

    commands = readme_cli_commands()
    assert len(commands) >= 10 and "ddpg-tui compare" in commands
    parser = build_parser()
    for command in commands:
        parser.parse_args(shlex.split(command)[1:])


SHELL_SEPARATORS = {"&&", "||", ";", "|"}
# One [...] of a synopsis, innermost first; after a space, so that pip's 'ddpg-tui[serve]' is not one.
OPTIONAL_PART = re.compile(r"\s\[[^\[\]]*\]")


def code_block_commands(page: Path) -> list[tuple[int, str]]:
    """(line number, command) of every `ddpg-tui ...` in the page's shell code blocks.

    Python blocks are left out. A `\\` continuation is joined to its next line; a description after two or
    more spaces (the command lists) or after `#` is cut; so is what comes before the command (`VAR=$(...)`,
    `pip install ... &&`, the `attach:` of quoted output, which is a command the user will copy too). A synopsis's
    optional parts (`[--steps N]`) are dropped so that its required part is still checked; a line where an
    alternative (`a|b`) is left even then is a synopsis with nothing to parse.
    """
    commands: list[tuple[int, str]] = []
    language: str | None = None  # None: outside a code block
    joined, first = "", 0
    for number, raw in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if line.startswith("```"):
            language = line[3:].strip() if language is None else None
            continue
        if language is None or language == "python":
            continue
        if not joined:
            first = number
        joined = f"{joined} {line}" if joined else line
        if joined.endswith("\\"):
            joined = joined[:-1].rstrip()
            continue
        shell, joined = re.split(r"\s{2,}", joined.removeprefix("$ "))[0], ""
        while OPTIONAL_PART.search(shell):
            shell = OPTIONAL_PART.sub(" ", shell)
        if "ddpg-tui" not in shell:
            continue
        try:
            words = shlex.split(shell, comments=True)
        except ValueError:  # an unclosed quote: the test reports the line as it stands
            commands.append((first, shell))
            continue
        segments: list[list[str]] = [[]]
        for word in words:
            if word in SHELL_SEPARATORS:
                segments.append([])
            else:
                segments[-1].append(word)
        for segment in segments:
            if "ddpg-tui" in segment:
                command = segment[segment.index("ddpg-tui"):]
                if not any("|" in word for word in command):
                    commands.append((first, shlex.join(command)))
    return commands


def test_every_command_in_the_docs_code_blocks_parses() -> None:
    # Parsing only (nothing runs): a renamed option, a dropped command or a typo in a copied example makes the
    # page lie. The bad-input rows are in what-happens-if.md's table, not in code blocks, and run in test_cli.py.
    from ddpg_tui.cli.main import build_parser
    from ddpg_tui.request import UsageError

    parser = build_parser()
    commands = [(f"{page.relative_to(ROOT)}:{number}", command)
                for page in PAGES for number, command in code_block_commands(page)]
    assert len(commands) >= 25  # the blocks are found at all (31 when this was written, 18 in the README)
    refused = []
    for where, command in commands:
        try:
            parser.parse_args(shlex.split(command)[1:])
        except (UsageError, ValueError) as error:  # ValueError: shlex, on a quote left open
            refused.append(f"{where}: {command}: {error}")
    assert refused == []


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_every_section_marker_is_closed_in_order(page: Path) -> None:
    # The tests and benchmarks/readme_results.py cut tables out between these markers.
    markers = re.findall(r"<!-- (section|end): ([\w-]+) -->", page.read_text(encoding="utf-8"))
    open_sections: list[str] = []
    for kind, name in markers:
        if kind == "section":
            open_sections.append(name)
        else:
            assert open_sections and open_sections.pop() == name, f"<!-- end: {name} --> closes nothing"
    assert open_sections == []
