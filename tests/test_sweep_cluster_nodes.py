"""A joined cluster is checked before any trial, on real local nodes (the two-node fixture of test_sweep_ray.py).

Both nodes of a local cluster share one disk and one venv, so each test adds a third node that
differs on purpose: one whose raylet sees a tmpfs over the sweeps folder (its own mount namespace:
the sweep folder is not shared storage there), one that claims another gymnasium.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_sweep_ray import cluster, new_run, tiny, wait_for  # noqa: F401  (the module's two-node cluster)

from ddpg_tui.sweeps.cluster import VERSIONS_OVERRIDE_ENV, check_nodes
from ddpg_tui.sweeps.reeval import reevaluate_all
from ddpg_tui.sweeps.spec import SweepError

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

ROOT = Path(__file__).resolve().parent.parent


def alive_nodes() -> int:
    return len(alive_ids())


def alive_ids() -> set[str]:
    import ray

    return {n["NodeID"] for n in ray.nodes() if n.get("Alive")}


def can_unshare_mounts() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture
def node_without_the_sweeps_folder(cluster, tmp_path: Path) -> Iterator[tuple[Path, str]]:  # noqa: F811
    """A third node (`ray start`) in its own mount namespace, where tmp_path/runs/sweeps is an empty tmpfs.

    Yields the sweeps folder and the node's id.
    """
    if not can_unshare_mounts():
        pytest.skip("needs unshare -m (a private mount namespace) to give one node its own sweeps folder")
    sweeps = tmp_path / "runs" / "sweeps"
    sweeps.mkdir(parents=True)
    before = alive_ids()
    ray_command = f"exec {Path(sys.executable).parent / 'ray'} start --address={cluster.address} --num-cpus=1 --block"
    node = subprocess.Popen(["unshare", "-m", "sh", "-c", f"mount -t tmpfs tmpfs {sweeps} && {ray_command}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: len(alive_ids()) > len(before), 60, "the third node to join")
        yield sweeps, (alive_ids() - before).pop()
    finally:
        os.killpg(node.pid, signal.SIGTERM)
        node.wait(60)
        wait_for(lambda: alive_ids() == before, 60, "the third node to leave")


def test_the_two_shared_nodes_pass_the_check(cluster, tmp_path: Path) -> None:  # noqa: F811
    assert check_nodes(tmp_path) == 2
    assert not (tmp_path / ".cluster-check").exists()  # the marker is gone once checked


def test_a_node_with_another_gymnasium_is_refused_by_name_before_any_trial(cluster, tmp_path: Path) -> None:  # noqa: F811
    before = alive_nodes()
    node = cluster.add_node(num_cpus=1, env_vars={VERSIONS_OVERRIDE_ENV: json.dumps({"gymnasium": "0.29.1"})})
    try:
        wait_for(lambda: alive_nodes() > before, 60, "the third node to join")
        with pytest.raises(SweepError) as refused:
            check_nodes(tmp_path)
        import gymnasium

        assert str(refused.value) == (f"node {node.node_ip_address} ({node.node_id[:8]}) runs other versions than "
                                      f"this driver: gymnasium 0.29.1 (here {gymnasium.__version__}); "
                                      "install the same ones on every node")
    finally:
        cluster.remove_node(node)
        wait_for(lambda: alive_nodes() == before, 60, "the third node to leave")


def test_a_node_that_does_not_share_the_sweep_folder_is_refused_by_the_command_with_exit_2(
        cluster, tmp_path: Path, node_without_the_sweeps_folder: tuple[Path, str]) -> None:  # noqa: F811
    sweeps, node_id = node_without_the_sweeps_folder
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "ddpg_tui", "sweep", "--address", cluster.address, "--headless", "--name", "c",
               "--steps", "200", "--seeds", "0", "--set", "hidden_sizes=[16,16]", "--set", "device=cpu"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    marker = sweeps / "c" / ".cluster-check"
    assert lines[0].startswith(f"ddpg-tui: error: node {cluster.address.split(':')[0]} ({node_id[:8]}) ")
    assert lines[0].endswith(f"cannot read {marker} (No such file or directory): the sweep folder must be on "
                             "storage every node shares, at the same path")
    assert not (sweeps / "c").exists()  # nothing ran: the same command may be run again


def test_reeval_names_each_checkpoint_a_node_cannot_read_instead_of_a_nan(cluster, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "latest.pt").write_bytes(b"damaged")
    outcome = reevaluate_all({"a": tmp_path / "a" / "latest.pt", "b": tmp_path / "b" / "latest.pt"}, 1,
                             "Pendulum-v1", 0)
    assert outcome.results == {}
    assert sorted(outcome.problems) == ["a", "b"]
    lines = outcome.lines()
    assert lines[0].startswith("--reeval: on node ")
    assert lines[0].endswith(f"{tmp_path / 'a' / 'latest.pt'} is not there")
    assert f"{tmp_path / 'b' / 'latest.pt'} cannot be evaluated (" in lines[1]


def test_a_sweeps_reeval_scores_each_trial_and_names_the_one_whose_checkpoint_is_gone(
        cluster, tmp_path: Path) -> None:  # noqa: F811
    import csv

    run = new_run(tmp_path, "reeval", tiny(total_steps=200, eval_every=100, save_every=100), seeds=(0, 1), reeval=1)
    result = run.fit()
    assert result.state == "finished"
    rows = list(csv.DictReader((run.sweep_dir / "summary.csv").open()))
    assert all(float(row["reeval_mean"]) == float(row["reeval_mean"]) for row in rows)  # numbers, not NaN
    assert result.message == ""

    gone = run.sweep_dir / rows[0]["trial"] / "checkpoints" / "latest.pt"
    gone.unlink()
    scores = run.reevaluate()
    run.close()
    assert set(scores) == {rows[1]["trial"]}
    assert len(run.reeval_problems) == 1
    assert run.reeval_problems[0].endswith(f"{gone} is not there")


def test_trials_ask_for_a_gpu_only_where_the_cluster_has_one_and_train_on_cpu_otherwise(
        cluster, tmp_path: Path) -> None:  # noqa: F811
    import json as json_

    from ddpg_tui.sweeps.request import new_sweep_request, start_sweep

    def started(name: str, gpus: float | None = None):
        request = new_sweep_request(tiny(device="auto"), "test", None, (0,), {}, name=name, root=tmp_path,
                                    gpus_per_trial=gpus)
        run = start_sweep(request)
        run.close()
        return run

    run = started("no-gpu")  # the two nodes have no GPU
    assert (run.cluster.gpus_per_trial, run.spec.base.device, run.plan.base["device"]) == (0.0, "cpu", "cpu")
    assert json_.loads((tmp_path / "no-gpu" / "sweep.json").read_text())["config"]["device"] == "auto"

    before = alive_nodes()
    node = cluster.add_node(num_cpus=1, num_gpus=2)  # Ray counts what a node declares: no real GPU needed
    try:
        wait_for(lambda: alive_nodes() > before, 60, "the GPU node to join")
        run = started("gpu", gpus=0.5)
        assert (run.cluster.gpus_per_trial, run.spec.base.device, run.plan.base["device"]) == (0.5, "cuda", "cuda")
    finally:
        cluster.remove_node(node)
        wait_for(lambda: alive_nodes() == before, 60, "the GPU node to leave")
