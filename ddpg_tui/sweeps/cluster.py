"""Ray for a sweep: start a local instance or join a cluster, check a joined cluster's nodes, size each trial.

Imports no Ray until asked. A joined cluster (`--address`) is checked before any trial starts,
so that what would otherwise fail hours in (a node without the shared sweep folder, a node with
other versions of the code or of torch, gymnasium and Ray) fails at once, in one line:

- `connect` ships the project's code (agents/, ddpg_tui/, presets/) to every node as the job's
  `runtime_env` (`py_modules`), so the trials run the driver's code;
- `check_nodes` runs one task pinned to each alive node, which reads a marker the driver wrote
  into the sweep folder and reports its versions and a fingerprint of the code it imported;
- `trial_resources` decides each trial's CPUs and GPUs and the device it trains on.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import secrets
import signal
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ddpg_tui.sweeps.spec import NAMESPACE, SweepError, SweepSpec

ADDRESS_TIMEOUT = 30.0  # seconds an --address may take to answer
CHECK_TIMEOUT = 120.0  # seconds for every node's check task (a node's first task starts a worker, and unpacks the code)
MAX_THREADS_PER_TRIAL = 4  # small MLP updates do not scale with threads (STACK-NOTES: 2 were slower than 1)
MARKER_FILE = ".cluster-check"
PROJECT_PACKAGES = ("agents", "ddpg_tui", "presets")  # what a trial imports of this project
CHECKED_DISTRIBUTIONS = ("torch", "gymnasium", "ray")
# A test's way to make one node of a local cluster differ on purpose (its nodes share one venv): JSON of
# versions that node claims. Nothing else sets it.
VERSIONS_OVERRIDE_ENV = "DDPG_TUI_TEST_NODE_VERSIONS"
# Never shipped to the nodes: bytecode differs by Python and is rebuilt there anyway.
RUNTIME_ENV_EXCLUDES = ["__pycache__", "*.pyc", "*.pyo"]


def require_ray() -> None:
    """Import Ray Tune, or say which extra brings it."""
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        raise SweepError("sweeps run on Ray Tune, which is not installed: pip install 'ddpg-tui[ray]'") from None


def quiet_ray_environment() -> None:
    """Settings that must be in the environment before Ray starts its processes (they inherit it).

    - Tune's own result loggers (result.json, progress.csv, TensorBoard) are off: every trial
      already writes metrics.jsonl into its run folder, and these files grow with every report.
    - Ray rotates its session logs at 10 MB, keeping two, so a week-long sweep cannot fill the disk.
    - The legacy, silent reporter (with verbose=0): the new one prints a box and a TensorBoard hint.
    - A forced experiment snapshot after every trial checkpoint (see `driver.py`) is on purpose,
      so Tune's warning about it is off.
    - Ctrl+C is ours: the sweep asks each trial to save before the run stops.
    """
    for key, value in {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_ROTATION_MAX_BYTES": str(10 * 2**20),
                       "RAY_ROTATION_BACKUP_COUNT": "2", "RAY_AIR_NEW_OUTPUT": "0",
                       "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
                       "TUNE_DISABLE_SIGINT_HANDLER": "1", "RAY_DEDUP_LOGS": "0"}.items():
        os.environ.setdefault(key, value)


def address_endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of a HOST:PORT or ray://HOST:PORT address; None for auto. SweepError if malformed."""
    if address == "auto":
        return None  # Ray finds a local cluster, or says at once that there is none
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host, port = None, None
    if not host or not port or parsed.scheme not in ("tcp", "ray"):
        raise SweepError(f"--address {address!r}: expected auto or HOST:PORT")
    if parsed.scheme == "ray":
        # With Ray Client, Tuner.fit runs Tune's loop in an actor on the head node: the driver-side
        # callback, the stop keys and the summary would all happen there, out of this process's sight.
        raise SweepError(f"--address {address}: Ray Client runs Tune's loop on the cluster, out of this "
                         "command's sight; run ddpg-tui sweep on a node of the cluster with --address auto "
                         "(or the head's HOST:6379)")
    return host, port


def check_address(address: str, timeout: float = ADDRESS_TIMEOUT) -> None:
    """Fail in one line, within `timeout`, when a HOST:PORT or ray:// address does not answer.

    Ray's own connect retries for a minute and then raises a page of traceback.
    """
    endpoint = address_endpoint(address)
    if endpoint is None:
        return
    started = time.monotonic()
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            pass
    except OSError as error:
        waited = time.monotonic() - started
        reason = "no answer" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise SweepError(f"--address {address}: no Ray cluster answers there ({reason}, after {waited:.0f} s); "
                         "start one with 'ray start --head', or leave --address out to run on this machine") from None


@dataclass(frozen=True, slots=True)
class Cluster:
    cpus: int
    nodes: int
    largest_node_cpus: int
    started_here: bool  # a local Ray instance this process started (and stops at the end)
    gpus: float = 0.0
    largest_node_gpus: float = 0.0
    gpus_per_trial: float = 0.0  # what each trial asks Tune for, decided by `trial_resources`


@contextlib.contextmanager
def hangups_blocked() -> Iterator[None]:
    """Start Ray's own services (GCS, raylet, and the workers they start) deaf to SIGHUP.

    They share the driver's process group, and a closing terminal sends SIGHUP to the whole
    group: they would end at once, while the driver was asking each trial to save, and the
    trials would lose everything since their last periodic save. A blocked signal stays
    blocked in the children and across exec (Ray itself starts them with SIGINT blocked, for
    Ctrl+C); the driver unblocks it again and handles it.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no SIGHUP
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def project_runtime_env() -> dict[str, Any]:
    """The job's runtime_env on a joined cluster: this checkout's packages, uploaded once and unpacked on each node.

    `py_modules` rather than `working_dir`: it ships only the three packages (never runs/, .venv or
    tests/), and it leaves each worker's current folder alone.
    """
    import agents
    import ddpg_tui
    import presets

    return {"py_modules": [str(Path(module.__file__).parent) for module in (agents, ddpg_tui, presets)],
            "excludes": list(RUNTIME_ENV_EXCLUDES)}


def connect(address: str | None, jobs: int | None) -> Cluster:
    """Start a quiet local Ray instance with `jobs` CPUs, or join the cluster at `address` with this code.

    If this process already has Ray (tests, a second sweep), that instance is used as it is.
    """
    quiet_ray_environment()
    require_ray()
    import logging

    import ray

    started = False
    if not ray.is_initialized():
        if address is None:
            # address="local": a new instance even when `ray start` left one running on this machine (without
            # it, ray.init joins that one, and refuses num_cpus with a traceback).
            with hangups_blocked():
                ray.init(address="local", num_cpus=jobs or os.cpu_count() or 1, include_dashboard=False,
                         log_to_driver=False, logging_level=logging.ERROR, namespace=NAMESPACE)
            started = True
        else:
            check_address(address)
            try:
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, namespace=NAMESPACE,
                         runtime_env=project_runtime_env())
            except (ConnectionError, RuntimeError, ValueError) as error:
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise SweepError(f"--address {address}: cannot join the Ray cluster ({first})") from None
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    per_node_cpus = [int(n.get("Resources", {}).get("CPU", 0)) for n in nodes]
    per_node_gpus = [float(n.get("Resources", {}).get("GPU", 0)) for n in nodes]
    return Cluster(cpus=int(ray.cluster_resources().get("CPU", 0)), nodes=len(nodes),
                   largest_node_cpus=max(per_node_cpus, default=0), started_here=started,
                   gpus=float(ray.cluster_resources().get("GPU", 0)), largest_node_gpus=max(per_node_gpus, default=0))


# Per trial: CPUs, GPUs, device ---------------------------------------------------------------------


def cpus_per_trial(spec: SweepSpec, cluster: Cluster, jobs: int | None) -> tuple[int, int]:
    """(CPUs per trial, trials at once). A trial is a config; its seeds take turns, so one seed at a
    time uses all of them: torch threads = the CPUs the trial was given.

    With fewer configs than CPUs, each trial gets a share (on one node), at most
    MAX_THREADS_PER_TRIAL; otherwise one each. `--set threads=N` asks for N CPUs per trial instead.
    """
    budget = min(jobs, cluster.cpus) if jobs else cluster.cpus
    budget = max(1, budget)
    count = spec.config_count
    per_trial = spec.base.threads or (
        min(MAX_THREADS_PER_TRIAL, max(1, budget // count)) if count < budget else 1)
    per_trial = max(1, min(per_trial, cluster.largest_node_cpus or per_trial))
    return per_trial, max(1, budget // per_trial)


@dataclass(frozen=True, slots=True)
class TrialDevice:
    gpus: float  # Tune's "gpu" resource per trial (Ray then shows the trial only its GPUs, as cuda:0)
    device: str  # the device every trial's config trains on


def trial_resources(device: str, resources: Mapping[str, float], gpus_per_trial: float | None,
                    largest_node_gpus: float | None = None) -> TrialDevice:
    """GPUs per trial and the trials' device, from the config's device and the cluster's resources.

    `resources` is `ray.cluster_resources()`. A trial that asks Tune for no GPU sees every GPU of
    its node and would put itself on cuda:0 beside all the others; so a trial gets GPUs only by
    asking (cuda or auto on a cluster with GPUs, `gpus_per_trial` of one, default 1), and otherwise
    trains on cpu. SweepError when the request cannot be met.
    """
    total = float(resources.get("GPU", 0) or 0)
    per_node = total if largest_node_gpus is None else largest_node_gpus
    if gpus_per_trial is not None and gpus_per_trial <= 0:
        raise SweepError(f"--gpus-per-trial: {gpus_per_trial:g} is not allowed; expected a number > 0 "
                         "(a fraction shares a GPU, e.g. 0.25)")
    if device == "cpu":
        if gpus_per_trial is not None:
            raise SweepError("--gpus-per-trial asks for GPUs, but the trials' device is cpu; "
                             "set device=cuda or device=auto, or leave --gpus-per-trial out")
        return TrialDevice(0.0, "cpu")
    if total <= 0:
        if device == "cuda" or gpus_per_trial is not None:
            asked = "device=cuda" if device == "cuda" else "--gpus-per-trial"
            raise SweepError(f"{asked}: the Ray cluster has no GPU; set device=cpu (or auto) to train on CPUs")
        return TrialDevice(0.0, "cpu")
    gpus = 1.0 if gpus_per_trial is None else float(gpus_per_trial)
    if gpus > 1 and gpus != int(gpus):
        raise SweepError(f"--gpus-per-trial: {gpus:g} is not allowed; use a fraction of one GPU or a whole number")
    if gpus > per_node:
        raise SweepError(f"--gpus-per-trial {gpus:g}: no node of the Ray cluster has that many GPUs "
                         f"(the largest has {per_node:g}); no trial could start")
    return TrialDevice(gpus, "cuda")


# Checking the nodes before any trial -------------------------------------------------------------


def write_marker(sweep_dir: Path) -> str:
    """A random token in the sweep folder, for each node to read back: proof that it sees this folder."""
    token = secrets.token_hex(16)
    (Path(sweep_dir) / MARKER_FILE).write_text(token + "\n", encoding="utf-8")
    return token


def code_fingerprint() -> str:
    """A hash of the project's sources as this process imported them (the same code hashes the same anywhere)."""
    import importlib

    digest = hashlib.sha256()
    for name in PROJECT_PACKAGES:
        root = Path(importlib.import_module(name).__file__).parent
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".toml", ".tcss") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root.parent)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def local_versions() -> dict[str, str]:
    """The versions a trial would run with here: the project's (and its code's hash), torch's, gymnasium's, Ray's."""
    import ddpg_tui

    versions = {"ddpg-tui": ddpg_tui.__version__, "ddpg-tui code": code_fingerprint()}
    for name in CHECKED_DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    if override := os.environ.get(VERSIONS_OVERRIDE_ENV):
        versions.update(json.loads(override))
    return versions


def node_report(marker: str) -> dict[str, Any]:
    """What one node sees (a Ray task pinned to it): the marker's token, or why it cannot read it, and its versions."""
    try:
        token: str | None = Path(marker).read_text(encoding="utf-8").strip()
        problem = ""
    except OSError as error:
        token, problem = None, error.strerror or type(error).__name__
    return {"token": token, "problem": problem, "versions": local_versions()}


def node_name(node: Mapping[str, Any]) -> str:
    return f"{node.get('NodeManagerAddress', '?')} ({str(node.get('NodeID', '?'))[:8]})"


def differences(node: str, report: Mapping[str, Any], marker: Path, token: str, here: Mapping[str, str]) -> str:
    """The one line that refuses this node, or "" when it matches the driver."""
    if report["token"] is None:
        return (f"node {node} cannot read {marker} ({report['problem']}): the sweep folder must be on storage "
                "every node shares, at the same path")
    if report["token"] != token:
        return (f"node {node} sees another {marker} than this driver wrote: its sweep folder is not the "
                "driver's (mount the same shared storage at the same path on every node)")
    differ = [f"{name} {report['versions'].get(name, 'unknown')} (here {value})"
              for name, value in here.items() if report["versions"].get(name) != value]
    if differ:
        return (f"node {node} runs other versions than this driver: " + ", ".join(differ)
                + "; install the same ones on every node")
    return ""


def check_nodes(sweep_dir: Path, timeout: float = CHECK_TIMEOUT) -> int:
    """Run one check task on each alive node of the connected Ray; SweepError (one line) for the first that differs.

    Returns the number of nodes checked. A node that runs no task within `timeout` is refused too.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    marker = Path(sweep_dir).resolve() / MARKER_FILE
    token = write_marker(marker.parent)
    try:
        here = local_versions()
        task = ray.remote(num_cpus=0, max_retries=0)(node_report)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        pending = {task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                   .remote(str(marker)): node_name(n) for n in nodes}
        deadline = time.monotonic() + timeout
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
            if not done:
                raise SweepError(f"node {sorted(pending.values())[0]} ran no check task within {timeout:.0f} s; "
                                 "is it alive, and can it start a Python worker?")
            name = pending.pop(done[0])
            try:
                report = ray.get(done[0])
            except Exception as error:  # the task itself failed there: its environment is broken
                from agents.errors import first_line

                raise SweepError(f"node {name} cannot run this project's code ({first_line(error)})") from None
            if line := differences(name, report, marker, token, here):
                raise SweepError(line)
        return len(nodes)
    except SweepError:
        # The sweep ends here with that one line, before any trial: the other nodes' check tasks die with this
        # driver, and Ray would print each as an "Unhandled error" (worker died) after it. Nothing else runs yet.
        os.environ["RAY_IGNORE_UNHANDLED_ERRORS"] = "1"
        raise
    finally:
        with contextlib.suppress(OSError):
            marker.unlink()
