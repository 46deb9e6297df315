"""Every bad input in the "What happens if …" table (docs/what-happens-if.md), run through the real command."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMAND = shutil.which("ddpg-tui") or ""


def readme_rows() -> list[tuple[str, int, str]]:
    text = (ROOT / "docs" / "what-happens-if.md").read_text(encoding="utf-8")
    section = text.split("<!-- section: what-happens-if -->")[1].split("<!-- end: what-happens-if -->")[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("`ddpg-tui"):
            continue
        rows.append((cells[1].strip("`"), int(cells[2]), cells[3].strip("`")))
    return rows


ROWS = readme_rows()


def test_the_table_covers_the_bad_inputs_the_issue_lists() -> None:
    commands = " ".join(command for command, _, _ in ROWS)
    for needle in ("--preset nope", "--env Pendulm", "CartPole", "HalfCheetah", "gamma=1.5", "batch_size=big",
                   "gama=", "--set gamma ", "corrupt.pt", "other-env.pt", "nowhere.pt", "not-a-folder",
                   "--resume runs/finished-run", "evil.pt", "module-env.pt", "no-counters.pt", "no_such_module:",
                   "--preset nowhere.toml", "--preset not-toml.toml", "--preset bad-field.toml",
                   "--preset module-env.toml", "export runs/no-checkpoint", "export tampered.pt",
                   "-o not-a-folder/policy.onnx"):
        assert needle in commands + " ", needle


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad-input")
    subprocess.run([sys.executable, str(ROOT / "tests" / "bad_input_fixtures.py")], cwd=folder, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return folder


@pytest.mark.parametrize(("command", "exit_code", "message"), ROWS, ids=[row[0][9:] for row in ROWS])
def test_bad_input_gets_one_line_and_an_exit_code(fixture_dir: Path, command: str, exit_code: int,
                                                  message: str) -> None:
    if "HalfCheetah" in command and importlib.util.find_spec("mujoco") is not None:
        pytest.skip("mujoco is installed here, so the missing-extra message cannot appear")
    args = [COMMAND or sys.executable, *([] if COMMAND else ["-m", "ddpg_tui"]), *command.split()[1:]]
    result = subprocess.run(args, cwd=fixture_dir, capture_output=True, text=True, timeout=120)
    assert result.returncode == exit_code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("ddpg-tui: error: ")
    assert message in lines[0], f"{message!r} not in {lines[0]!r}"
    assert not re.search(r"File \".*\", line \d+", result.stderr)
    if command.startswith("ddpg-tui export"):
        # A refused export leaves nothing half-written: no policy file and no temporary beside one.
        assert not [p for p in fixture_dir.rglob("*") if p.suffix in (".onnx", ".tmp")]


def test_help_lists_every_hyperparameter_and_an_example() -> None:
    from agents.config import FIELDS

    result = subprocess.run([sys.executable, "-m", "ddpg_tui", "train", "--help"], capture_output=True,
                            text=True, check=True, cwd=ROOT)
    for name in FIELDS:
        assert name in result.stdout
    assert "--set gamma=0.98" in result.stdout


def test_eval_prints_the_mean_return_as_json(fixture_dir: Path) -> None:
    import json

    result = subprocess.run([sys.executable, "-m", "ddpg_tui", "eval", "runs/finished-run", "--episodes", "2",
                             "--json"], cwd=fixture_dir, capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    report = json.loads(result.stdout)
    assert report["env_id"] == "Pendulum-v1" and report["episodes"] == 2 and report["step"] == 200
    assert report["mean"] == pytest.approx(sum(report["returns"]) / 2)


def test_presets_piped_is_a_plain_table_that_never_cuts_a_name() -> None:
    result = subprocess.run([sys.executable, "-m", "ddpg_tui", "presets"], capture_output=True, text=True,
                            check=True, cwd=ROOT, env={**os.environ, "COLUMNS": "60"})
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["preset", "env"]
    names = {line.split()[0] for line in lines[1:]}
    assert {"pendulum", "lunar-lander-continuous", "mountain-car-continuous"} <= names
    assert "…" not in result.stdout and "─" not in result.stdout


def test_the_install_hint_shows_only_while_the_extra_is_missing(monkeypatch) -> None:
    import importlib.util

    import presets

    lander = presets.load_preset("lunar-lander-continuous")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert lander.install_hint == "pip install 'ddpg-tui[box2d]'"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert lander.install_hint == "" and lander.missing_extra is None


def test_train_help_says_which_defaults_apply() -> None:
    result = subprocess.run([sys.executable, "-m", "ddpg_tui", "train", "--help"], capture_output=True,
                            text=True, check=True, cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
    assert "plain 'ddpg-tui train' uses the pendulum preset" in result.stdout
    gamma = next(line for line in result.stdout.splitlines() if line.strip().startswith("gamma "))
    assert "pendulum preset: 0.98; with --env: 0.99" in gamma


def test_headless_progress_piped_is_plain_lines_in_one_number_format(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "ddpg_tui", "train", "--headless", "--steps", "1200",
                             "--set", "hidden_sizes=[8]", "--set", "learning_starts=100", "--set", "batch_size=16",
                             "--set", "eval_every=600", "--set", "eval_episodes=2", "--set", "threads=1",
                             "--run-dir", "run"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "60"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    progress = [line for line in lines if line.startswith(("warming up", "training ", "finished"))]
    assert progress and any(line.startswith("finished   1,200/1,200") for line in progress)
    evals = [line for line in lines if "  eval " in line and line.startswith("step")]
    assert len(evals) == 2 and all(re.search(r"eval -?[\d,]+\.\d ± [\d,]+\.\d", line) for line in evals)
    assert not any("…" in line for line in lines)  # nothing cut to fit the 60 columns


def test_resume_says_where_it_resumes_and_how_to_go_on(fixture_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(fixture_dir / "runs" / "finished-run", tmp_path / "run")
    result = subprocess.run([sys.executable, "-m", "ddpg_tui", "train", "--resume", "run", "--steps", "300",
                             "--headless"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "resuming run at step 200 of 300 (Pendulum-v1)" in result.stdout
    assert "ddpg-tui eval run/checkpoints/latest.pt" in result.stdout
    assert "ddpg-tui train --resume run --steps 600" in result.stdout


def _integer_options() -> list[tuple[str, str]]:
    import argparse

    from ddpg_tui.cli.commands import int_option
    from ddpg_tui.cli.main import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [(name, action.option_strings[0]) for name, sub in subparsers.choices.items()
            for action in sub._actions if action.type is int_option]


def _plain_int_options() -> list[tuple[str, str]]:
    import argparse

    from ddpg_tui.cli.main import build_parser

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return [(name, action.option_strings[0]) for name, sub in subparsers.choices.items()
            for action in sub._actions if action.type is int]


def test_every_integer_option_takes_1e4_the_way_set_does() -> None:
    from ddpg_tui.cli.main import build_parser

    options = _integer_options()
    assert {("train", "--steps"), ("train", "--seed"), ("eval", "--episodes"), ("watch", "--episodes"),
            ("sweep", "--steps"), ("sweep", "--jobs"), ("sweep", "--samples"), ("sweep", "--reeval")} <= set(options)
    assert not _plain_int_options(), "an integer option that refuses 1e4"
    parser = build_parser()
    positional = {"eval": ["run"], "watch": ["run"]}
    for command, option in options:
        for text, expected in (("1e4", 10_000), ("2.5e3", 2500), ("20_000", 20_000), ("7", 7)):
            args = parser.parse_args([command, *positional.get(command, []), option, text])
            assert getattr(args, option.lstrip("-").replace("-", "_")) == expected, (command, option, text)


@pytest.mark.parametrize("text", ["1.5", "2.5e0", "ten", "true", "inf"])
def test_a_non_integral_integer_option_is_one_line(text: str, capsys) -> None:
    from ddpg_tui.cli.main import main

    assert main(["train", "--steps", text]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("ddpg-tui: error: argument --steps: invalid int value:"), err
