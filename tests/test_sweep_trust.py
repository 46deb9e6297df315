"""A sweep folder runs no code without the user saying so: env ids from it follow the checkpoint rule,
and Ray Tune's pickled state must carry this user's HMAC before Tune may read it."""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agents.config import DDPGConfig
from ddpg_tui.sweeps.cluster import Cluster, cpus_per_trial
from ddpg_tui.sweeps.spec import SweepSpec, write_spec

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

ROOT = Path(__file__).resolve().parent.parent
MARKER_MODULE = "ddpg_trust_marker_mod"
TINY = ["--set", "learning_starts=100", "--set", "batch_size=32", "--set", "hidden_sizes=[16,16]",
        "--set", "eval_every=200", "--set", "eval_episodes=1", "--set", "save_every=200",
        "--set", "buffer_size=10000", "--set", "device=cpu"]


def command() -> list[str]:
    installed = shutil.which("ddpg-tui")
    return [installed] if installed else [sys.executable, "-m", "ddpg_tui"]


def environment(tmp: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp)]), "XDG_CONFIG_HOME": str(tmp / "cfg")}
    env.pop("RAY_ADDRESS", None)
    return env


def marker_module(tmp: Path) -> Path:
    """A module that leaves a file behind when it is imported: the proof that an env id imported it."""
    marker = tmp / "imported"
    (tmp / f"{MARKER_MODULE}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    return marker


def sweep_folder(root: Path, env_id: str) -> Path:
    sweep_dir = root / "runs" / "sweeps" / "s"
    sweep_dir.mkdir(parents=True)
    write_spec(sweep_dir, SweepSpec(name="s", label="t", base=DDPGConfig(env_id=env_id, total_steps=400)))
    return sweep_dir


# 1. Env ids -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--reeval", "3"]])
def test_resume_refuses_a_sweep_json_env_that_names_a_module_before_importing_it(tmp_path: Path,
                                                                                extra: list[str]) -> None:
    marker = marker_module(tmp_path)
    sweep_dir = sweep_folder(tmp_path, f"{MARKER_MODULE}:Pendulum-v1")
    done = subprocess.run([*command(), "sweep", "--resume", str(sweep_dir), *extra, "--headless"], cwd=tmp_path,
                          env=environment(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"ddpg-tui: error: {sweep_dir / 'sweep.json'} names env '{MARKER_MODULE}:Pendulum-v1', which would import "
        f"module '{MARKER_MODULE}'; pass --env ID yourself if you trust it"]
    assert not marker.exists()


def test_resume_refuses_a_trials_config_toml_env_that_names_a_module(tmp_path: Path) -> None:
    from ddpg_tui.request import UsageError
    from ddpg_tui.sweeps.request import SweepRequest, trusted_spec

    sweep_dir = sweep_folder(tmp_path, "Pendulum-v1")
    (sweep_dir / "base" / "seed0").mkdir(parents=True)
    (sweep_dir / "base" / "seed0" / "config.toml").write_text(DDPGConfig(env_id="evil:Pendulum-v1").to_toml())
    request = SweepRequest(None, sweep_dir, True, None, None, True, None)
    spec = SweepSpec.from_json((sweep_dir / "sweep.json").read_text())
    with pytest.raises(UsageError, match=r"config.toml names env 'evil:Pendulum-v1', which would import"):
        trusted_spec(spec, request)


def test_resume_refuses_a_sweep_made_when_each_seed_was_a_tune_trial_of_its_own(tmp_path: Path) -> None:
    import json

    from ddpg_tui.request import UsageError
    from ddpg_tui.sweeps.request import SweepRequest, start_sweep

    sweep_dir = sweep_folder(tmp_path, "Pendulum-v1")
    data = json.loads((sweep_dir / "sweep.json").read_text())
    (sweep_dir / "sweep.json").write_text(json.dumps({**data, "version": 1}))
    with pytest.raises(UsageError, match=r"was made by an older ddpg-tui that ran one Tune trial per seed \(sweep.json "
                                         r"version 1\); this one runs one trial per config and cannot carry it on"):
        start_sweep(SweepRequest(None, sweep_dir, True, None, None, True, None))


def test_env_with_resume_is_the_users_override_and_replaces_the_folders_id(tmp_path: Path) -> None:
    from ddpg_tui.cli.commands.sweep import resolve_sweep_request
    from ddpg_tui.cli.main import build_parser
    from ddpg_tui.sweeps.request import trusted_spec

    sweep_dir = sweep_folder(tmp_path, "evil:Pendulum-v1")
    args = build_parser().parse_args(["sweep", "--resume", str(sweep_dir), "--env", "Pendulum-v1", "--trust-folder"])
    request = resolve_sweep_request(args)
    assert request.env_id == "Pendulum-v1" and request.trust_folder
    spec = trusted_spec(SweepSpec.from_json((sweep_dir / "sweep.json").read_text()), request)
    assert spec.base.env_id == "Pendulum-v1"  # the trials are built from spec.base


def test_compare_and_the_runs_list_read_a_sweep_whose_env_names_a_module_without_importing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A guard, not a fix: compare and the runs screen only read (sweep.json and the trials' text files).
    from ddpg_tui.sweeps.history import list_runs, read_any

    marker = marker_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # so that an import, if one happened, would succeed
    sweep_dir = sweep_folder(tmp_path, f"{MARKER_MODULE}:Pendulum-v1")
    read_any(sweep_dir)
    list_runs(tmp_path / "runs")
    done = subprocess.run([*command(), "compare", str(sweep_dir), "--headless"], cwd=tmp_path,
                          env=environment(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 2), done.stderr
    assert not marker.exists() and MARKER_MODULE not in sys.modules


# 3. Threads per trial ---------------------------------------------------------------------------------


def test_threads_per_trial_are_capped_at_four_and_help_says_so() -> None:
    # Two configs: two trials (a trial is a config; its seeds take turns on its CPUs).
    spec = SweepSpec(name="s", label="t", base=DDPGConfig(), grid={"tau": (0.005, 0.01)}, seeds=(0, 1, 2))
    big = Cluster(cpus=32, nodes=1, largest_node_cpus=32, started_here=True)
    assert cpus_per_trial(spec, big, None) == (4, 8)
    assert cpus_per_trial(spec, big, 6) == (3, 2)  # below the cap, the share as before
    assert cpus_per_trial(SweepSpec(name="s", label="t", base=DDPGConfig(threads=8), seeds=(0, 1)), big, None)[0] == 8
    from ddpg_tui.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["sweep"]
    assert "at most 4" in " ".join(sub.format_help().split())


# 2. Tune's pickles --------------------------------------------------------------------------------------


def test_one_flipped_byte_of_a_signed_state_file_is_refused(tmp_path: Path, monkeypatch) -> None:
    from ddpg_tui.sweeps.trust import StateSigner, SweepTrustError, key_path, verify_state

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    (tmp_path / "tune").mkdir()
    state = tmp_path / "tune" / "tuner.pkl"
    state.write_bytes(pickle.dumps({"a": 1}))
    StateSigner(tmp_path).sign()
    assert key_path().stat().st_mode & 0o777 == 0o600
    verify_state(tmp_path)
    data = bytearray(state.read_bytes())
    data[5] ^= 1
    state.write_bytes(bytes(data))
    with pytest.raises(SweepTrustError, match=r"does not match its signature.*--trust-folder"):
        verify_state(tmp_path)
    (tmp_path / "tune" / "experiment_state-x.json").write_text("{}")
    state.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(SweepTrustError, match=r"has no signature.*killed the instant.*--trust-folder"):
        verify_state(tmp_path)


class _Planted:
    """Unpickling this makes a folder: the proof that a pickle was read."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.mkdir, (str(self.marker),))


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("signed")
    done = subprocess.run([*command(), "sweep", "--env", "Pendulum-v1", "--seeds", "0", "--steps", "400", *TINY,
                           "--name", "s", "--jobs", "1", "--headless"], cwd=tmp, env=environment(tmp),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return tmp


def test_a_finished_sweeps_state_is_signed_and_resumes_without_the_override(finished_sweep: Path) -> None:
    sweep_dir = finished_sweep / "runs" / "sweeps" / "s"
    assert {p.name for p in (sweep_dir / "tune").iterdir() if p.is_file()} <= set(
        __import__("json").loads((sweep_dir / "tune-state.sig").read_text()))
    done = subprocess.run([*command(), "sweep", "--resume", str(sweep_dir), "--jobs", "1", "--headless"],
                          cwd=finished_sweep, env=environment(finished_sweep), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr


def test_a_planted_tuner_pkl_is_refused_unread_and_trust_folder_lets_it_through(finished_sweep: Path) -> None:
    sweep_dir = finished_sweep / "runs" / "sweeps" / "s"
    marker = finished_sweep / "unpickled"
    (sweep_dir / "tune" / "tuner.pkl").write_bytes(pickle.dumps(_Planted(marker)))
    refused = subprocess.run([*command(), "sweep", "--resume", str(sweep_dir), "--jobs", "1", "--headless"],
                             cwd=finished_sweep, env=environment(finished_sweep), capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.splitlines()
    assert len(lines) == 1 and "tuner.pkl does not match its signature" in lines[0] and "--trust-folder" in lines[0]
    assert not marker.exists(), "the planted pickle was read before the check"
    subprocess.run([*command(), "sweep", "--resume", str(sweep_dir), "--jobs", "1", "--headless", "--trust-folder"],
                   cwd=finished_sweep, env=environment(finished_sweep), capture_output=True, text=True, timeout=300)
    assert marker.exists(), "--trust-folder should hand the folder to Tune as it is"
