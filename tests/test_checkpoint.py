"""Checkpoints: atomic writes, weights-only loads, and one clear line for every bad file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    content_digest,
    load_checkpoint,
    save_checkpoint,
)
from agents.evaluation import evaluate_checkpoint
from agents.trainer import Trainer


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    from agents.config import DDPGConfig

    config = DDPGConfig(env_id="Pendulum-v1", total_steps=300, learning_starts=100, batch_size=32,
                        hidden_sizes=(16, 16), eval_every=0, eval_episodes=1, threads=1, device="cpu")
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    Trainer(config, None, run_dir).run()
    return run_dir


def test_round_trip_gives_the_same_actions(trained_run: Path) -> None:
    from agents.ddpg import DDPGAgent
    from agents.envs import env_spec, make_env

    payload = load_checkpoint(trained_run / "checkpoints" / "latest.pt")
    from agents.config import DDPGConfig

    config = DDPGConfig.from_mapping(payload["config"])
    agent = DDPGAgent(env_spec(make_env("Pendulum-v1"), "Pendulum-v1"), config, torch.device("cpu"))
    agent.load_state_dict(payload["agent"])
    obs = np.array([0.5, -0.5, 1.0], np.float32)
    first = evaluate_checkpoint(str(trained_run / "checkpoints" / "latest.pt"), episodes=2, seed=7)
    second = evaluate_checkpoint(str(trained_run), episodes=2, seed=7)  # a run folder means its latest
    assert first.evaluation.returns == second.evaluation.returns
    assert first.step == 300
    assert np.all(np.isfinite(agent.act(obs)))


def test_checkpoint_holds_everything_needed_to_resume(trained_run: Path) -> None:
    payload = load_checkpoint(trained_run / "checkpoints" / "latest.pt")
    assert {"actor", "critic", "actor_target", "critic_target", "actor_optimizer", "critic_optimizer"} \
        <= payload["agent"].keys()
    assert payload["env_id"] == "Pendulum-v1" and payload["config"]["hidden_sizes"] == [16, 16]
    assert payload["counters"]["step"] == 300
    assert {"torch", "action", "noise", "env"} <= payload["rng"].keys()
    assert (trained_run / "checkpoints" / "replay_buffer.pt").exists()
    assert (trained_run / "config.toml").exists() and (trained_run / "metrics.jsonl").exists()


def test_truncated_file_is_reported_as_incomplete(trained_run: Path, tmp_path: Path) -> None:
    data = (trained_run / "checkpoints" / "latest.pt").read_bytes()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="incomplete or corrupt"):
        load_checkpoint(broken)


def test_a_flipped_byte_never_loads_different_weights(trained_run: Path, tmp_path: Path) -> None:
    original = load_checkpoint(trained_run / "checkpoints" / "latest.pt")
    reference = content_digest(original)
    data = (trained_run / "checkpoints" / "latest.pt").read_bytes()
    refused = 0
    for position in range(100, len(data) - 100, len(data) // 60):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        path = tmp_path / "flipped.pt"
        path.write_bytes(bytes(damaged))
        try:
            loaded = load_checkpoint(path)
        except CheckpointError as error:
            assert "incomplete or corrupt" in str(error)
            refused += 1
            continue
        # A flip in zip padding or pickle bookkeeping is harmless; anything else must be refused.
        assert content_digest(loaded) == reference, f"byte {position} changed the weights silently"
    assert refused > 10


def test_garbage_file_is_reported_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"\x80\x02this is not a checkpoint" * 100)
    with pytest.raises(CheckpointError, match="incomplete or corrupt"):
        load_checkpoint(path)


class Payload:
    def __reduce__(self):
        return (os.getcwd, ())


def test_pickled_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "ddpg-tui-checkpoint", "format_version": 1, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="pickled Python objects and was refused"):
        load_checkpoint(path)


def test_foreign_file_and_future_version_are_refused(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a ddpg-tui checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    save_checkpoint(tmp_path / "future.pt", {})
    payload = torch.load(tmp_path / "future.pt", weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(tmp_path / "future.pt")


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere.pt")


def test_checkpoint_for_another_env_is_refused(trained_run: Path, tmp_path: Path) -> None:
    payload = load_checkpoint(trained_run / "checkpoints" / "latest.pt")
    payload["env_id"] = "MountainCarContinuous-v0"
    save_checkpoint(tmp_path / "mismatch.pt", payload)
    with pytest.raises(CheckpointError, match="obs/action dims 3/1, but the env has 2/1"):
        evaluate_checkpoint(str(tmp_path / "mismatch.pt"), episodes=1, seed=0)


def test_failed_write_leaves_the_previous_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "latest.pt"
    atomic_write_bytes(path, b"old")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [path]


def test_process_killed_mid_save_leaves_the_previous_checkpoint_loadable(tmp_path: Path) -> None:
    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"marker": torch.tensor(1)})
    writer = textwrap.dedent(f"""
        import torch, sys
        from agents.checkpoint import save_checkpoint
        big = torch.zeros(40_000_000)  # 160 MB: the kill lands mid-write
        print("ready", flush=True)
        while True:
            save_checkpoint({str(path)!r}, {{"marker": torch.tensor(2), "big": big}})
    """)
    process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[1])
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    time.sleep(0.4)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    process.stdout.close()
    payload = load_checkpoint(path)  # whole: the old one or a complete new one, never a torn one
    assert int(payload["marker"]) in (1, 2)


def test_saving_a_full_buffer_needs_far_less_than_a_second_copy_in_memory() -> None:
    # The old path held about 2.4 copies (a buffer copy, tobytes for the checksum, an in-memory stream).
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc to reset the peak RSS")
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, str(root / "benchmarks" / "save_memory.py")], capture_output=True,
                            text=True, timeout=120, check=True)
    ratio = float(result.stdout.split("extra peak memory ")[1].split("x")[0])
    assert ratio <= 1.5, result.stdout


def test_files_get_the_mode_the_umask_allows(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "latest.pt", {"marker": torch.tensor(1)})
        atomic_write_bytes(tmp_path / "config.toml", b"x = 1\n")
    finally:
        os.umask(previous)
    assert (tmp_path / "latest.pt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "config.toml").stat().st_mode & 0o777 == 0o644


def test_pyproject_requires_a_torch_whose_weights_only_load_has_no_known_bypass() -> None:
    # weights_only=True is the only barrier against code in a checkpoint; releases below 2.6 and
    # below 2.10 had published bypasses, so a looser floor lets pip pick one of them.
    import tomllib
    root = Path(__file__).resolve().parent.parent
    deps = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert "torch>=2.10" in deps
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "torch>=2.2" not in readme
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme


@pytest.mark.parametrize("content", [b"todo: try a larger batch\n", b"step,return\n1,2\n", b"\x00\x01\x02\x03"])
def test_a_file_that_is_no_torch_file_is_not_called_corrupt(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert str(error.value) == f"{path} is not a ddpg-tui checkpoint"
