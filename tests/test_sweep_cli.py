"""`ddpg-tui sweep` on bad input: one line, exit code 2, no traceback, and nothing left behind."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def sweep(args: list[str], cwd: Path, prelude: str = "") -> subprocess.CompletedProcess:
    code = f"{prelude}import sys; from ddpg_tui.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def assert_one_line(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ddpg-tui: error: "), result.stderr
    assert message in lines[0], f"{message!r} not in {lines[0]!r}"


@pytest.mark.parametrize(("args", "message"), [
    (["--grid", "gama=0.9,0.99"], "unknown hyperparameter 'gama'; allowed: actor_lr"),
    (["--grid", "gamma=0.9,1.5"], "gamma: 1.5 is not allowed; expected a number from 0 to 1"),
    (["--grid", "actor_lr"], "--grid 'actor_lr': expected key=value1,value2, e.g. --grid actor_lr=1e-3,3e-4"),
    (["--grid", "actor_lr=1e-3,,3e-4"], "an empty value"),
    (["--grid", "tau=0.01", "--grid", "tau=0.02"], "--grid tau is given twice"),
    (["--grid", "tau=0.01,0.02", "--set", "tau=0.03"], "tau is given by both --grid and --set"),
    (["--sample", "critic_lr=lognormal(1e-4,1e-2)"], "expected one of uniform(a,b)"),
    (["--samples", "3"], "--samples needs at least one --sample"),
    (["--seeds", "4-0"], "--seeds '4-0': a range must go upwards"),
    (["--set", "eval_every=0", "--scheduler", "asha"], "--scheduler asha compares evaluations"),
    (["--jobs", "0"], "--jobs: 0 is not allowed"),
    (["--name", "../x"], "--name '../x': use letters, digits"),
    (["--resume", "runs/nowhere"], "--resume: runs/nowhere is not a sweep folder (it has no sweep.json)"),
    (["--preset", "nope"], "unknown preset 'nope'; available:"),
    (["--search", "tpe"], "--search tpe searches the space of --sample; give at least one --sample"),
    (["--search", "tpe", "--sample", "tau=loguniform(1e-3,5e-2)", "--grid", "gamma=0.98,0.99"],
     "--search tpe cannot be combined with --grid: TPE chooses every searched value; give gamma to --sample"),
    (["--search", "bayes"], "argument --search: invalid choice: 'bayes'"),
    (["--resume", "runs/x", "--search", "tpe"], "--resume keeps the sweep's configs, seeds and settings; --search "
                                                "cannot change"),
])
def test_bad_sweep_input_is_one_line_and_exit_2_before_ray_loads(tmp_path: Path, args: list[str],
                                                                  message: str) -> None:
    started = time.monotonic()
    result = sweep(["sweep", *args, "--headless"], tmp_path, prelude="import sys; sys.modules['ray'] = None; ")
    assert_one_line(result, message)
    assert time.monotonic() - started < 20  # no Ray, no torch: a typo answers at once
    assert not (tmp_path / "runs").exists(), "a refused sweep leaves no folder"


def test_an_existing_sweep_name_without_resume_is_refused(tmp_path: Path) -> None:
    (tmp_path / "runs" / "sweeps" / "mine").mkdir(parents=True)
    result = sweep(["sweep", "--name", "mine", "--headless"], tmp_path)
    assert_one_line(result, "sweep runs/sweeps/mine already exists; carry it on with --resume runs/sweeps/mine, "
                            "or choose another --name")


def test_resume_keeps_the_sweeps_configs(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "sweep.json").write_text("{}")
    result = sweep(["sweep", "--resume", "s", "--grid", "tau=0.01,0.02", "--headless"], tmp_path)
    assert_one_line(result, "--resume keeps the sweep's configs, seeds and settings; --grid cannot change")


def test_without_ray_the_error_names_the_extra(tmp_path: Path) -> None:
    result = sweep(["sweep", "--seeds", "0", "--headless"], tmp_path, prelude="import sys; sys.modules['ray'] = None; ")
    assert_one_line(result, "sweeps run on Ray Tune, which is not installed: pip install 'ddpg-tui[ray]'")
    assert not (tmp_path / "runs").exists()


def test_tpe_without_optuna_names_the_extra_before_ray_starts(tmp_path: Path) -> None:
    result = sweep(["sweep", "--seeds", "0", "--search", "tpe", "--sample", "tau=loguniform(1e-3,5e-2)", "--headless"],
                   tmp_path, prelude="import sys; sys.modules['optuna'] = None; ")
    assert_one_line(result, "--search tpe runs Optuna, which is not installed: pip install 'ddpg-tui[ray]'")
    assert not (tmp_path / "runs").exists()


def test_an_address_that_does_not_answer_is_one_line_within_30_seconds(tmp_path: Path) -> None:
    started = time.monotonic()
    result = sweep(["sweep", "--seeds", "0", "--address", "127.0.0.1:9", "--headless"], tmp_path)
    assert_one_line(result, "--address 127.0.0.1:9: no Ray cluster answers there")
    assert time.monotonic() - started < 30
    assert not (tmp_path / "runs").exists(), "no sweep folder for a sweep that never started"


def test_a_malformed_address_is_refused(tmp_path: Path) -> None:
    result = sweep(["sweep", "--seeds", "0", "--address", "ray://nohost", "--headless"], tmp_path)
    assert_one_line(result, "--address 'ray://nohost': expected auto or HOST:PORT")


def test_a_ray_client_address_is_refused_with_what_to_do_instead(tmp_path: Path) -> None:
    result = sweep(["sweep", "--seeds", "0", "--address", "ray://127.0.0.1:10001", "--headless"], tmp_path,
                   prelude="import sys; sys.modules['ray'] = None; ")
    assert_one_line(result, "Ray Client runs Tune's loop on the cluster, out of this command's sight; run ddpg-tui "
                            "sweep on a node of the cluster with --address auto")


def test_sweep_help_lists_the_issue_flags() -> None:
    result = subprocess.run([sys.executable, "-m", "ddpg_tui", "sweep", "--help"], capture_output=True,
                            text=True, check=True, cwd=ROOT)
    for flag in ("--seeds", "--grid", "--sample", "--samples", "--set", "--steps", "--jobs", "--address",
                 "--scheduler", "--name", "--headless", "--resume", "--reeval", "--gpus-per-trial", "--search"):
        assert flag in result.stdout
    text = " ".join(result.stdout.split())
    assert "With --jobs 1 the same command proposes the same configs in the same order" in text
    assert "with trials running at once, TPE's proposals depend on which trials end first" in text
