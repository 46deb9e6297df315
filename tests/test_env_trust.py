"""An env id read from a file never imports a module; one typed by the user still may."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agents.checkpoint import load_checkpoint, save_checkpoint
from agents.config import DDPGConfig
from agents.envs import EnvError, check_env_id_from_file, make_env
from agents.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]

# A module that leaves a mark when imported; the tests put it in the working folder,
# which `python -m` puts on sys.path, as an attacker's file next to a checkpoint would be.
MARKING_MODULE = textwrap.dedent("""
    from pathlib import Path
    Path("imported.marker").write_text("this module was imported")
""")


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> Path:
    """A folder with a finished run, a checkpoint naming `marking_module:Pendulum-v1`, and that module."""
    folder = tmp_path_factory.mktemp("crafted")
    config = DDPGConfig(total_steps=200, learning_starts=100, batch_size=32, hidden_sizes=(16, 16),
                        eval_every=0, eval_episodes=1, threads=1, device="cpu")
    Trainer(config, None, folder / "runs" / "run").run()
    checkpoints = folder / "runs" / "run" / "checkpoints"
    payload = load_checkpoint(checkpoints / "latest.pt")
    payload["env_id"] = payload["config"]["env_id"] = "marking_module:Pendulum-v1"
    save_checkpoint(folder / "crafted.pt", payload)
    save_checkpoint(checkpoints / "latest.pt", {**payload, "config": {**payload["config"], "total_steps": 200}})
    (folder / "marking_module.py").write_text(MARKING_MODULE)
    return folder


def ddpg_tui(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ddpg_tui", *args], cwd=folder, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("command", [["eval", "crafted.pt"], ["train", "--resume", "runs/run", "--steps", "400",
                                                                "--headless"]])
def test_a_checkpoint_naming_a_module_env_is_refused_before_any_import(crafted: Path, command: list[str]) -> None:
    result = ddpg_tui(crafted, *command)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "names env 'marking_module:Pendulum-v1', which would import module 'marking_module'" in lines[0]
    assert "pass --env ID yourself if you trust it" in lines[0]
    assert not (crafted / "imported.marker").exists()


def test_the_module_is_not_in_sys_modules_after_evaluating_the_checkpoint(crafted: Path) -> None:
    code = textwrap.dedent("""
        import sys
        from agents.checkpoint import CheckpointError
        from agents.envs import EnvError
        from agents.evaluation import evaluate_checkpoint
        try:
            evaluate_checkpoint("crafted.pt", episodes=1, seed=0)
        except (CheckpointError, EnvError) as error:
            print("refused:", error)
        print("imported" if "marking_module" in sys.modules else "not imported")
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=crafted, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{crafted}"})
    assert result.stdout.splitlines()[-1] == "not imported", result.stdout + result.stderr
    assert "refused:" in result.stdout


def test_env_override_evaluates_a_checkpoint_whose_id_was_refused(crafted: Path) -> None:
    result = ddpg_tui(crafted, "eval", "crafted.pt", "--env", "Pendulum-v1", "--episodes", "1")
    assert result.returncode == 0, result.stderr
    assert "Pendulum-v1 at step 200" in result.stdout
    assert not (crafted / "imported.marker").exists()


def test_env_override_must_fit_the_checkpoint_dims(crafted: Path) -> None:
    result = ddpg_tui(crafted, "eval", "crafted.pt", "--env", "MountainCarContinuous-v0")
    assert result.returncode == 2
    assert "obs/action dims 3/1, but the env has 2/1" in result.stderr


def test_an_id_the_user_types_may_still_import_its_module(tmp_path: Path) -> None:
    (tmp_path / "marking_module.py").write_text(MARKING_MODULE)
    result = ddpg_tui(tmp_path, "train", "--env", "marking_module:Pendulum-v1", "--steps", "60", "--headless",
                      "--set", "learning_starts=50", "--set", "batch_size=8", "--set", "hidden_sizes=[8]",
                      "--set", "eval_every=0", "--set", "eval_episodes=1", "--run-dir", "run")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "imported.marker").exists()


@pytest.mark.parametrize("env_id", ["this:Pendulum-v1", "gymnasium.envs:Pendulum-v1"])
def test_file_env_ids_with_a_module_are_refused(env_id: str) -> None:
    with pytest.raises(EnvError, match="would import module"):
        check_env_id_from_file(env_id, "checkpoint x.pt")


def test_file_env_ids_must_already_be_registered() -> None:
    assert check_env_id_from_file("Pendulum-v1", "checkpoint x.pt") == "Pendulum-v1"
    with pytest.raises(EnvError, match="not registered"):
        check_env_id_from_file("NotAnEnv-v0", "checkpoint x.pt")


def test_a_missing_module_in_a_typed_id_is_one_line() -> None:
    with pytest.raises(EnvError) as info:
        make_env("no_such_module_here:Pendulum-v1")
    assert "importing 'no_such_module_here' failed" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_module_that_raises_on_import_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_env_module.py").write_text("raise RuntimeError('broken on purpose')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EnvError, match="RuntimeError: broken on purpose"):
        make_env("broken_env_module:Pendulum-v1")


def test_env_override_resumes_a_run_whose_checkpoint_names_a_module(crafted: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(crafted / "runs" / "run", tmp_path / "run")
    result = ddpg_tui(tmp_path, "train", "--resume", "run", "--env", "Pendulum-v1", "--steps", "260", "--headless")
    assert result.returncode == 0, result.stderr
    assert "resuming run at step 200 of 260 (Pendulum-v1)" in result.stdout
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["counters"]["step"] == 260


PRESET_NAMING_A_MODULE = textwrap.dedent("""
    env_id = "marking_module:Pendulum-v1"
    [hyperparameters]
    total_steps = 60
    learning_starts = 50
    batch_size = 8
    hidden_sizes = [8]
    eval_every = 0
    eval_episodes = 1
    gamma = 0.9
""")


def test_a_preset_file_naming_a_module_env_is_refused_before_any_import_and_env_trains_it(tmp_path: Path) -> None:
    (tmp_path / "marking_module.py").write_text(MARKING_MODULE)
    (tmp_path / "best.toml").write_text(PRESET_NAMING_A_MODULE)
    refused = ddpg_tui(tmp_path, "train", "--preset", "best.toml", "--headless", "--run-dir", "run")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip() == ("ddpg-tui: error: preset file best.toml names env 'marking_module:Pendulum-v1', "
                                      "which would import module 'marking_module'; pass --env ID yourself if you "
                                      "trust it")
    assert not (tmp_path / "imported.marker").exists() and not (tmp_path / "run").exists()
    chosen = ddpg_tui(tmp_path, "train", "--preset", "best.toml", "--env", "Pendulum-v1", "--headless",
                      "--run-dir", "run")
    assert chosen.returncode == 0, chosen.stderr
    config = (tmp_path / "run" / "config.toml").read_text()
    assert 'env_id = "Pendulum-v1"' in config and "gamma = 0.9" in config  # the file's values, the typed env
    assert not (tmp_path / "imported.marker").exists()
