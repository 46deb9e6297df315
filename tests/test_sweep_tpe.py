"""`--search tpe` on a real Ray (one local CPU, so one trial at a time: the reproducible case).

The trials train the rigged bandit (test_sweep_rigged_env): the return follows the policy's action, so
learning configs score about +1 and configs whose actor barely moves about 0, and TPE has something to see.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agents.config import DDPGConfig
from ddpg_tui.sweeps.cluster import connect, quiet_ray_environment
from ddpg_tui.sweeps.space import parse_sample
from ddpg_tui.sweeps.spec import NAMESPACE, SweepSpec, create_sweep_folder, load_spec, write_spec

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

TESTS = Path(__file__).resolve().parent
SAMPLES = (parse_sample("actor_lr=loguniform(1e-7,1e-2)"), parse_sample("batch_size=choice(16,32)"))


@pytest.fixture(scope="module")
def one_cpu() -> Iterator[None]:
    quiet_ray_environment()
    import ray

    ray.init(address="local", num_cpus=1, include_dashboard=False, namespace=NAMESPACE, log_to_driver=False,
             logging_level=logging.ERROR, runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}})
    yield
    ray.shutdown()
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def bandit(**changes: object) -> DDPGConfig:
    from test_sweep_rigged_env import ENV_ID

    return DDPGConfig(env_id=ENV_ID, total_steps=200, learning_starts=50, batch_size=16, hidden_sizes=(8, 8),
                      eval_every=100, eval_episodes=1, save_every=100, buffer_size=1000, critic_lr=1e-2,
                      device="cpu").replace(**changes)


def tpe_run(root: Path, name: str, base: DDPGConfig, *, samples: int = 4, sample_seed: int = 0,
            seeds: tuple[int, ...] = (0, 1), **spec_fields: object):
    from ddpg_tui.sweeps.driver import SweepRun

    spec = SweepSpec(name=name, label="test", base=base, samples=SAMPLES, sample_count=samples,
                     sample_seed=sample_seed, seeds=seeds, search="tpe", **spec_fields)
    sweep_dir = create_sweep_folder(root, name)
    write_spec(sweep_dir, spec)
    return SweepRun(spec, sweep_dir, connect(None, None), progress_every=0.3)


def proposals(sweep_dir: Path) -> list[tuple[int, dict]]:
    return [(row["index"], row["overrides"]) for row in json.loads((sweep_dir / "proposed.json").read_text())]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def test_the_same_tpe_sweep_with_one_trial_at_a_time_proposes_the_same_configs_in_the_same_order(
        one_cpu: None, tmp_path: Path) -> None:
    from ddpg_tui.sweeps.history import read_sweep

    outcomes = {}
    # A budget of 4 starts with 2 random configs (search.startup_trials), so the last 2 are TPE's, from results.
    for name in ("first", "again"):
        run = tpe_run(tmp_path, name, bandit())
        outcomes[name] = run.fit()
        run.close()
        assert outcomes[name].state == "finished", outcomes[name].message

    first = proposals(tmp_path / "first")
    assert [index for index, _ in first] == [0, 1, 2, 3], "each proposal numbered, in the order proposed"
    assert proposals(tmp_path / "again") == first
    assert len({json.dumps(o, sort_keys=True) for _, o in first}) == 4

    # Every proposal trained every seed in its one trial, and the summary, best.toml and compare know it.
    rows = outcomes["first"].snapshot.trials
    assert len(rows) == 8 and {r.state for r in rows} == {"finished"}
    labels = {r.variant for r in rows}
    assert all(label.startswith(f"s{i},") for i, label in enumerate(sorted(labels, key=lambda x: int(x[1]))))
    for label in labels:
        assert {p.name for p in (tmp_path / "first" / label).iterdir()} >= {"seed0", "seed1"}
    summary = (tmp_path / "first" / "summary.md").read_text()
    assert all(f"`{label}`" in summary for label in labels)
    assert "--search tpe --samples 4" in summary and "4 configs × 2 seeds" in summary
    # What TPE learned from each proposal is that config's median over its seeds, the number the summary ranks by.
    from ddpg_tui.sweeps.board import standing

    searcher_state = sorted((tmp_path / "first" / "tune").glob("searcher-state-*.pkl"))[-1]
    study = pickle.loads(searcher_state.read_bytes())["_ot_study"]  # our own sweep's file: safe to unpickle
    by_config = outcomes["first"].snapshot.by_variant()
    medians = {int(label.split(",")[0][1:]): standing(label, rows).median for label, rows in by_config.items()}
    assert [t.value for t in study.trials] == pytest.approx([medians[i] for i in range(4)])
    best = (tmp_path / "first" / "best.toml").read_text()
    assert "actor_lr" in best and "batch_size" in best
    assert len(read_sweep(tmp_path / "first").series) == 4


def test_a_stopped_tpe_sweep_with_asha_resumes_its_searcher_and_finishes_the_budget_without_proposing_twice(
        one_cpu: None, tmp_path: Path) -> None:
    from ddpg_tui.sweeps.driver import SweepRun

    run = tpe_run(tmp_path, "resumed", bandit(total_steps=1200, eval_every=150, save_every=150), samples=5,
                  seeds=(0,), scheduler="asha")
    outcome: list = []
    driver = threading.Thread(target=lambda: outcome.append(run.fit()), daemon=True)
    driver.start()

    # Any state: at 150 steps between evaluations a trial reports only at its evaluations, so on a fast machine
    # the board shows it "evaluating", never "training", and ASHA may stop it at its first rung a moment later.
    def second_trained() -> bool:
        return any(r.variant.startswith("s1,") and r.step >= 150 for r in run.board.snapshot().trials)
    wait_for(second_trained, 240, "the second proposal to train")
    run.stop_sweep()
    driver.join(180)
    run.close()
    assert outcome and outcome[0].state == "paused", outcome and outcome[0].message
    before = proposals(run.sweep_dir)
    assert 2 <= len(before) < 5

    resumed = SweepRun(load_spec(run.sweep_dir), run.sweep_dir, connect(None, None), resume=True, progress_every=0.3)
    result = resumed.fit()
    resumed.close()
    assert result.state == "finished", result.message
    after = proposals(run.sweep_dir)
    assert [index for index, _ in after] == [0, 1, 2, 3, 4], after
    assert after[:len(before)] == before, "the proposals made before the stop are kept, not proposed again"
    assert len({json.dumps(o, sort_keys=True) for _, o in after}) == 5, "a fresh sampler would propose the first again"
    states = {r.variant: r.state for r in result.snapshot.trials}
    assert len(states) == 5 and set(states.values()) <= {"finished", "early-stopped"}, states


class _Planted:
    """Unpickling this makes a folder: the proof that a pickle was read."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.mkdir, (str(self.marker),))


def test_the_searchers_state_is_signed_and_a_planted_one_is_refused_before_tune_reads_it(
        one_cpu: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ddpg_tui.sweeps.driver import SweepRun
    from ddpg_tui.sweeps.trust import SIGNATURE_FILE, SweepTrustError, verify_state

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    run = tpe_run(tmp_path, "signed", bandit(total_steps=100), samples=2, seeds=(0,))
    assert run.fit().state == "finished"
    run.close()
    tune_dir = run.sweep_dir / "tune"
    searcher_files = sorted(tune_dir.glob("searcher-state-*.pkl")) + sorted(tune_dir.glob("search_gen_state-*.json"))
    assert len(searcher_files) == 2
    assert {p.name for p in searcher_files} <= set(json.loads((run.sweep_dir / SIGNATURE_FILE).read_text()))
    verify_state(run.sweep_dir)  # as Tune left them: accepted

    marker = tmp_path / "unpickled"
    resumed = SweepRun(load_spec(run.sweep_dir), run.sweep_dir, connect(None, None), resume=True)
    try:
        for planted in searcher_files:
            original = planted.read_bytes()
            planted.write_bytes(pickle.dumps(_Planted(marker)))
            with pytest.raises(SweepTrustError, match=rf"{planted.name} does not match its signature.*--trust-folder"):
                resumed.tuner()
            assert not marker.exists(), "the planted searcher state was unpickled before the check"
            planted.write_bytes(original)
    finally:
        resumed.close()
