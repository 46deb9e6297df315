"""What a sweep decides about a cluster without one: GPUs and device per trial, a node's refusal line, reeval's reasons.

The real nodes are in tests/test_sweep_cluster_nodes.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.config import DDPGConfig
from ddpg_tui.sweeps.cluster import (
    TrialDevice,
    differences,
    local_versions,
    node_report,
    project_runtime_env,
    trial_resources,
)
from ddpg_tui.sweeps.reeval import reevaluate
from ddpg_tui.sweeps.spec import SweepError

NO_GPU = {"CPU": 8.0, "memory": 1e9}
FOUR_GPUS = {"CPU": 32.0, "GPU": 4.0}


@pytest.mark.parametrize(("device", "resources", "asked", "expected"), [
    ("auto", NO_GPU, None, TrialDevice(0.0, "cpu")),  # auto without GPUs: cpu, said in the config
    ("cpu", FOUR_GPUS, None, TrialDevice(0.0, "cpu")),  # cpu on a GPU cluster asks for none
    ("auto", FOUR_GPUS, None, TrialDevice(1.0, "cuda")),  # GPUs there: one each by default
    ("cuda", FOUR_GPUS, None, TrialDevice(1.0, "cuda")),
    ("cuda", FOUR_GPUS, 0.25, TrialDevice(0.25, "cuda")),  # four trials share a GPU
    ("auto", {"GPU": 2.0}, 2, TrialDevice(2.0, "cuda")),
])
def test_trials_get_gpus_only_when_their_device_may_use_them_and_the_cluster_has_them(
        device: str, resources: dict, asked: float | None, expected: TrialDevice) -> None:
    assert trial_resources(device, resources, asked) == expected


@pytest.mark.parametrize(("device", "resources", "asked", "largest", "message"), [
    ("cuda", NO_GPU, None, None, "device=cuda: the Ray cluster has no GPU"),
    ("auto", NO_GPU, 0.5, None, "--gpus-per-trial: the Ray cluster has no GPU"),
    ("cpu", FOUR_GPUS, 0.5, None, "--gpus-per-trial asks for GPUs, but the trials' device is cpu"),
    ("cuda", FOUR_GPUS, 2, 1.0, "--gpus-per-trial 2: no node of the Ray cluster has that many GPUs"),
    ("cuda", FOUR_GPUS, 1.5, None, "--gpus-per-trial: 1.5 is not allowed"),
    ("cuda", FOUR_GPUS, 0, None, "--gpus-per-trial: 0 is not allowed"),
])
def test_a_gpu_request_the_cluster_cannot_meet_is_refused_before_any_trial(
        device: str, resources: dict, asked: float | None, largest: float | None, message: str) -> None:
    with pytest.raises(SweepError, match="^" + message.replace("(", r"\(").replace("+", r"\+")):
        trial_resources(device, resources, asked, largest)


def test_a_node_is_refused_in_one_line_naming_it_and_what_differs(tmp_path: Path) -> None:
    here = {"ddpg-tui": "0.1.0", "ddpg-tui code": "abc", "torch": "2.13.0", "gymnasium": "1.4.0", "ray": "2.60.0"}
    marker = tmp_path / ".cluster-check"
    same = {"token": "t", "problem": "", "versions": dict(here)}
    assert differences("10.0.0.2 (ab12cd34)", same, marker, "t", here) == ""

    other = {**same, "versions": {**here, "gymnasium": "0.29.1", "ddpg-tui code": "def"}}
    line = differences("10.0.0.2 (ab12cd34)", other, marker, "t", here)
    assert line == ("node 10.0.0.2 (ab12cd34) runs other versions than this driver: ddpg-tui code def (here abc), "
                    "gymnasium 0.29.1 (here 1.4.0); install the same ones on every node")
    missing = differences("n", {**same, "token": None, "problem": "No such file or directory"}, marker, "t", here)
    assert missing.startswith(f"node n cannot read {marker} (No such file or directory)")
    assert "another" in differences("n", {**same, "token": "u"}, marker, "t", here)
    assert "\n" not in line + missing


def test_the_node_check_reads_the_marker_and_this_checkouts_versions(tmp_path: Path) -> None:
    (tmp_path / "m").write_text("token\n")
    report = node_report(str(tmp_path / "m"))
    assert report["token"] == "token"
    assert report["versions"] == local_versions()
    assert set(report["versions"]) == {"ddpg-tui", "ddpg-tui code", "torch", "gymnasium", "ray"}
    assert node_report(str(tmp_path / "absent"))["problem"] == "No such file or directory"


def test_the_runtime_env_ships_the_three_packages_and_not_runs_venv_or_tests() -> None:
    env = project_runtime_env()
    root = Path(__file__).resolve().parent.parent
    assert [Path(p) for p in env["py_modules"]] == [root / "agents", root / "ddpg_tui", root / "presets"]
    assert "__pycache__" in env["excludes"]


def test_reeval_says_which_checkpoint_cannot_be_evaluated_and_why(tmp_path: Path, tiny_config: DDPGConfig) -> None:
    from agents.trainer import Trainer

    assert reevaluate(str(tmp_path / "gone.pt"), 1, "Pendulum-v1", 0) == f"{tmp_path / 'gone.pt'} is not there"
    (tmp_path / "damaged.pt").write_bytes(b"not a checkpoint")
    damaged = reevaluate(str(tmp_path / "damaged.pt"), 1, "Pendulum-v1", 0)
    assert isinstance(damaged, str) and damaged.startswith(f"{tmp_path / 'damaged.pt'} cannot be evaluated (")
    assert "\n" not in damaged

    Trainer(tiny_config.replace(total_steps=200), None, tmp_path / "run").run()
    mean, std = reevaluate(str(tmp_path / "run" / "checkpoints" / "latest.pt"), 1, "Pendulum-v1", 0)
    assert mean == mean and std == std  # a number, not NaN
