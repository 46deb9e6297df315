"""Sweeps: does a change help, across seeds? Many runs of the same Trainer, scheduled by Ray Tune.

    runs/sweeps/NAME/
      sweep.json            what was asked: base config, grid, drawn samples, seeds, scheduler
      <config>/             one Tune trial per config: its seeds train in turn in one process
        seed<k>/            one ordinary run folder per seed: config.toml, metrics.jsonl,
                            checkpoints/ -- `ddpg-tui eval` and `train --resume` work on it
      tune/                 Tune's experiment: its state, and per trial a small marker of the
                            seeds' last saves (the run folders are the checkpoints)
      tune-state.sig        HMACs of Tune's pickled state files, checked by --resume (see `trust.py`)
      summary.csv           one row per seed run
      summary.md            one row per config, ranked by the median over seeds at equal steps

The rooms:
- this module: the sweep's spec and folder, and connecting to Ray (imports no Ray until asked);
- `space.py`: --grid, --sample, --seeds, and Tune's search space;
- `trial.py`: the Tune trainable, a config's seeds as `Trainer`s taking turns (`seed_turns.py`);
- `driver.py`: the Tuner, the driver-side callback, stopping trials and the sweep;
- `board.py`: the driver's picture of all trials, which every front-end draws;
- `summary.py`: summary.csv and summary.md;
- `history.py`: finished runs and sweeps read back from their folders, for `ddpg-tui compare`.

Data flows one way: trainer events -> the trial's reporter -> `tune.report` -> Tune's driver-side
callback -> the board -> the sweep screen or the headless table.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from agents.config import ConfigError, DDPGConfig
from ddpg_tui.sweeps.space import SampleSpec, Variant, format_value, trial_name, variants

SWEEPS_ROOT = Path("runs") / "sweeps"
SPEC_FILE = "sweep.json"
TUNE_DIR = "tune"
NAMESPACE = "ddpg-tui"
ADDRESS_TIMEOUT = 30.0  # seconds an --address may take to answer
SPEC_VERSION = 2  # 2: one Tune trial per config, seeds in <config>/seed<k>/
MAX_THREADS_PER_TRIAL = 4  # small MLP updates do not scale with threads (STACK-NOTES: 2 were slower than 1)


class SweepError(ValueError):
    """Bad input or a setup that cannot work: shown as one line, exit code 2."""


@dataclass(frozen=True)
class SweepSpec:
    """Everything that defines a sweep; written to sweep.json so that --resume runs the same one."""

    name: str
    label: str  # the preset's name, or the env id
    base: DDPGConfig
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    samples: tuple[SampleSpec, ...] = ()
    sample_count: int = 0
    sample_seed: int = 0
    drawn: tuple[dict[str, Any], ...] = ()  # the random variants, once drawn
    seeds: tuple[int, ...] = (0,)
    scheduler: str | None = None  # None or "asha"
    threshold: float | None = None  # the preset's solved return
    reeval: int = 0  # episodes of the fresh re-evaluation at the end (0: none)

    @property
    def keys(self) -> list[str]:
        """The searched keys, in the order of the summary's columns."""
        return [*self.grid, *(s.key for s in self.samples)]

    def variants(self) -> list[Variant]:
        return variants(self.grid, self.drawn)

    def trials(self) -> list[tuple[str, str, int]]:
        """(run name, variant label, seed) of every seed run, variant-major; the run name is its folder
        under the sweep folder. (A Tune trial is a whole config: see `variants`.)"""
        return [(trial_name(v.label, seed), v.label, seed) for v in self.variants() for seed in self.seeds]

    def facts(self) -> list[str]:
        searched = [f"--grid {k}={','.join(format_value(v) for v in vs)}" for k, vs in self.grid.items()]
        searched += [f"--sample {s.text()}" for s in self.samples]
        if self.samples:
            searched.append(f"--samples {self.sample_count} (drawn with seed {self.sample_seed})")
        seeds = self.seeds
        seed_text = (f"{seeds[0]}-{seeds[-1]}" if list(seeds) == list(range(seeds[0], seeds[-1] + 1))
                     else ",".join(map(str, seeds)))
        return [f"{self.label} ({self.base.env_id}), {self.base.total_steps:,} steps a trial",
                f"{_count(len(self.variants()), 'config')} × {_count(len(self.seeds), 'seed')} ({seed_text}) = "
                f"{_count(len(self.trials()), 'run')}, one Tune trial per config (its seeds in turn)",
                "searched: " + (" ".join(searched) or "nothing (the base config on every seed)"),
                f"scheduler: {self.scheduler or 'none (every config runs to the end)'}"
                + (" on the median over each config's seeds" if self.scheduler else "")]

    # sweep.json ----------------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({
            "version": SPEC_VERSION, "name": self.name, "label": self.label, "config": self.base.to_dict(),
            "grid": {k: [_plain(v) for v in vs] for k, vs in self.grid.items()},
            "samples": [{"key": s.key, "distribution": s.distribution, "arguments": [_plain(a) for a in s.arguments]}
                        for s in self.samples],
            "sample_count": self.sample_count, "sample_seed": self.sample_seed,
            "drawn": [{k: _plain(v) for k, v in d.items()} for d in self.drawn],
            "seeds": list(self.seeds), "scheduler": self.scheduler, "threshold": self.threshold,
            "reeval": self.reeval,
        }, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SweepSpec:
        from agents.config import validate_field

        data = json.loads(text)
        return cls(
            name=data["name"], label=data["label"], base=DDPGConfig.from_mapping(data["config"]),
            grid={k: tuple(validate_field(k, v) for v in vs) for k, vs in data["grid"].items()},
            samples=tuple(SampleSpec(s["key"], s["distribution"], tuple(s["arguments"])) for s in data["samples"]),
            sample_count=data["sample_count"], sample_seed=data["sample_seed"],
            drawn=tuple({k: validate_field(k, v) for k, v in d.items()} for d in data["drawn"]),
            seeds=tuple(data["seeds"]), scheduler=data["scheduler"], threshold=data["threshold"],
            reeval=data["reeval"])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# The sweep's folder -------------------------------------------------------------------------------


def create_sweep_folder(root: Path, name: str) -> Path:
    """Make runs/sweeps/NAME, refusing one that exists: two sweeps in one folder would mix their trials."""
    sweep_dir = Path(root) / name
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        sweep_dir.mkdir()
    except FileExistsError:
        raise SweepError(f"sweep {sweep_dir} already exists; carry it on with --resume {sweep_dir}, "
                         "or choose another --name") from None
    except OSError as error:
        raise SweepError(f"cannot make the sweep folder {sweep_dir} ({error.strerror or error})") from None
    return sweep_dir


def write_spec(sweep_dir: Path, spec: SweepSpec) -> None:
    (sweep_dir / SPEC_FILE).write_text(spec.to_json(), encoding="utf-8")


def check_resumable(sweep_dir: Path) -> None:
    """Refuse to carry on a sweep made when each seed was a Tune trial of its own (sweep.json version 1)."""
    version = SPEC_VERSION  # unreadable: load_spec says what is wrong with it
    with contextlib.suppress(OSError, ValueError, AttributeError):
        version = json.loads((Path(sweep_dir) / SPEC_FILE).read_text(encoding="utf-8")).get("version", 1)
    if version != SPEC_VERSION:
        raise SweepError(f"--resume: {sweep_dir} was made by an older ddpg-tui that ran one Tune trial per seed "
                         f"(sweep.json version {version}); this one runs one trial per config and cannot carry it on")


def load_spec(sweep_dir: Path) -> SweepSpec:
    path = Path(sweep_dir) / SPEC_FILE
    if not path.is_file():
        raise SweepError(f"--resume: {sweep_dir} is not a sweep folder (it has no {SPEC_FILE})")
    try:
        return SweepSpec.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError, ConfigError) as error:
        raise SweepError(f"--resume: {path} is damaged ({error})") from None


# Ray --------------------------------------------------------------------------------------------


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


def connect(address: str | None, jobs: int | None) -> Cluster:
    """Start a quiet local Ray instance with `jobs` CPUs, or join the cluster at `address`.

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
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, namespace=NAMESPACE)
            except (ConnectionError, RuntimeError, ValueError) as error:
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise SweepError(f"--address {address}: cannot join the Ray cluster ({first})") from None
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    per_node = [int(n.get("Resources", {}).get("CPU", 0)) for n in nodes]
    return Cluster(cpus=int(ray.cluster_resources().get("CPU", 0)), nodes=len(nodes),
                   largest_node_cpus=max(per_node, default=0), started_here=started)


def cpus_per_trial(spec: SweepSpec, cluster: Cluster, jobs: int | None) -> tuple[int, int]:
    """(CPUs per trial, trials at once). A trial is a config; its seeds take turns, so one seed at a
    time uses all of them: torch threads = the CPUs the trial was given.

    With fewer configs than CPUs, each trial gets a share (on one node), at most
    MAX_THREADS_PER_TRIAL; otherwise one each. `--set threads=N` asks for N CPUs per trial instead.
    """
    budget = min(jobs, cluster.cpus) if jobs else cluster.cpus
    budget = max(1, budget)
    count = len(spec.variants())
    per_trial = spec.base.threads or (
        min(MAX_THREADS_PER_TRIAL, max(1, budget // count)) if count < budget else 1)
    per_trial = max(1, min(per_trial, cluster.largest_node_cpus or per_trial))
    return per_trial, max(1, budget // per_trial)


def reevaluate(path: str, episodes: int, env_id: str, seed: int) -> tuple[float, float]:
    """Evaluate a trial's latest.pt on fresh episodes (a Ray task; imports torch where it runs)."""
    import torch

    from agents.evaluation import evaluate_checkpoint

    torch.set_num_threads(1)
    result = evaluate_checkpoint(path, episodes, seed, env_id=env_id)
    return result.evaluation.mean, result.evaluation.std

