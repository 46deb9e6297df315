"""`ddpg-tui export`: the ONNX policy is act() with the noise off, and runs without torch."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.config import DDPGConfig

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
SEED = 3  # not 0, so that a script that ignored the run's seed would score other episodes


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from agents.trainer import Trainer

    folder = tmp_path_factory.mktemp("export") / "run"
    config = DDPGConfig(total_steps=600, learning_starts=100, batch_size=32, hidden_sizes=(16, 16), eval_every=300,
                        eval_episodes=2, threads=1, seed=SEED)
    Trainer(config, None, folder).run()
    return folder


@pytest.fixture(scope="module")
def exported(run_dir: Path):
    from ddpg_tui.export import export_onnx

    return export_onnx(run_dir, run_dir / "policy.onnx")


def _agent(run_dir: Path):
    from agents.checkpoint import load_checkpoint
    from agents.ddpg import DDPGAgent
    from agents.envs import env_spec, make_env

    payload = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    config = DDPGConfig.from_mapping(payload["config"])
    env = make_env(config.env_id)
    agent = DDPGAgent(env_spec(env, config.env_id), config)
    agent.load_state_dict(payload["agent"])
    return agent, env


def test_the_onnx_policy_matches_act_on_1000_observations(run_dir: Path, exported) -> None:
    agent, env = _agent(run_dir)
    env.observation_space.seed(0)
    sampled = [env.observation_space.sample() for _ in range(500)]
    visited: list[np.ndarray] = []
    episode = 0
    while len(visited) < 500:  # states the policy itself reaches, not only uniform draws
        obs, _ = env.reset(seed=100 + episode)
        done = False
        while not done and len(visited) < 500:
            visited.append(obs)
            obs, _, terminated, truncated, _ = env.step(agent.act(obs))
            done = terminated or truncated
        episode += 1
    observations = np.asarray(sampled + visited, dtype=np.float32)
    expected = np.stack([agent.act(obs) for obs in observations])
    session = ort.InferenceSession(str(exported.path))
    actual = session.run(None, {"observation": observations})[0]
    assert actual.shape == (1000, 1)
    assert float(np.max(np.abs(actual - expected))) <= 1e-5
    single = session.run(None, {"observation": observations[:1]})[0]  # the batch dimension is dynamic
    assert single.shape == (1, 1)


def test_the_file_says_what_it_is_for_and_where_it_came_from(run_dir: Path, exported) -> None:
    import onnx

    from agents.run_files import read_rows
    from ddpg_tui import __version__

    model = onnx.load(str(exported.path))
    onnx.checker.check_model(model, full_check=True)
    meta = {entry.key: entry.value for entry in model.metadata_props}
    assert meta["env_id"] == "Pendulum-v1" and meta["ddpg_tui_version"] == __version__
    assert json.loads(meta["observation_shape"]) == [3] and json.loads(meta["action_shape"]) == [1]
    assert json.loads(meta["observation_high"]) == [1.0, 1.0, 8.0]
    assert json.loads(meta["action_low"]) == [-2.0] and json.loads(meta["action_high"]) == [2.0]
    assert meta["checkpoint_step"] == "600"
    last_eval = read_rows(run_dir, ("eval",))[-1]
    assert int(meta["eval_step"]) == last_eval["step"] == 600
    assert float(meta["eval_mean_return"]) == pytest.approx(last_eval["mean"])
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value  # a named, dynamic batch dimension


EVAL_SCRIPT = """
import json, sys
import gymnasium as gym
import numpy as np
import onnxruntime as ort

path, first_seed, episodes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
policy = ort.InferenceSession(path)
env = gym.make(policy.get_modelmeta().custom_metadata_map["env_id"])
returns = []
for i in range(episodes):
    obs, _ = env.reset(seed=first_seed + i)
    total, done = 0.0, False
    while not done:
        action = policy.run(None, {"observation": np.asarray(obs, dtype=np.float32)[None]})[0][0]
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    returns.append(total)
assert "torch" not in sys.modules, "torch was imported"
print(json.dumps(returns))
"""


def test_onnxruntime_alone_scores_what_eval_scores(run_dir: Path, exported) -> None:
    from agents.evaluation import evaluation_seed

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    report = subprocess.run([sys.executable, "-m", "ddpg_tui", "eval", str(run_dir), "--episodes", "10",
                             "--json"], capture_output=True, text=True, check=True, env=env)
    expected = json.loads(report.stdout)
    assert expected["seed"] == evaluation_seed(SEED)
    # No PYTHONPATH: the script cannot reach this project at all, only the file.
    alone = subprocess.run([sys.executable, "-c", EVAL_SCRIPT, str(exported.path), str(expected["seed"]), "10"],
                           capture_output=True, text=True, check=True, cwd=exported.path.parent,
                           env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"})
    returns = json.loads(alone.stdout)
    assert len(returns) == 10
    assert np.max(np.abs(np.asarray(returns) - np.asarray(expected["returns"]))) <= 1e-3


@pytest.mark.parametrize("page", ["README.md", "docs/onnx.md"])
def test_the_docs_example_runs_without_torch(exported, page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    block = text.split("<!-- section: onnx-example -->")[1].split("<!-- end: onnx-example -->")[0]
    code = block.split("```python\n")[1].split("```")[0]
    assert len(code.strip().splitlines()) <= 12
    check = "\nimport sys\nassert 'torch' not in sys.modules\n"
    result = subprocess.run([sys.executable, "-c", code + check], capture_output=True, text=True,
                            cwd=exported.path.parent, check=True,
                            env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"})
    assert result.stdout.startswith("return ")


def test_without_the_extra_it_says_what_to_install_and_writes_nothing(run_dir: Path, monkeypatch, capsys) -> None:
    import importlib.util

    from ddpg_tui.cli import main as cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("onnx", "onnxscript") else real(name, *a))
    target = run_dir / "missing-extra.onnx"
    assert cli.main(["export", str(run_dir), "-o", str(target)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["ddpg-tui: error: exporting to ONNX needs onnx and onnxscript, which are not installed: "
                     "pip install 'ddpg-tui[export]'"]
    assert not target.exists()


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary(run_dir: Path, exported, monkeypatch,
                                                                     capsys) -> None:
    from agents import checkpoint
    from ddpg_tui.cli import main as cli

    before = exported.path.read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "fsync", full_disk)
    assert cli.main(["export", str(run_dir), "-o", str(exported.path)]) == 2
    assert capsys.readouterr().err.strip() == (f"ddpg-tui: error: -o: cannot write {exported.path} "
                                               "(No space left on device)")
    assert exported.path.read_bytes() == before
    assert [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_the_command_writes_policy_onnx_into_the_run_folder_by_default(run_dir: Path, capsys) -> None:
    from ddpg_tui.cli import main as cli

    target = run_dir / "policy.onnx"
    target.unlink(missing_ok=True)
    assert cli.main(["export", str(run_dir)]) == 0
    assert target.stat().st_size > 0
    assert capsys.readouterr().out.startswith(f"wrote {target}: the policy of Pendulum-v1 at step 600")
