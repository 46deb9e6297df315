"""Which save a restarted sweep seed resumes from: its own run folder, checked against its trial's marker."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.checkpoint import load_checkpoint
from agents.config import DDPGConfig
from agents.run_files import RunFiles
from agents.trainer import Trainer
from ddpg_tui.sweeps.trial import FolderBehindError, _prepare_run_folder


def trained(run_dir: Path, steps: int) -> RunFiles:
    config = DDPGConfig(env_id="Pendulum-v1", total_steps=steps, learning_starts=50, batch_size=16,
                        hidden_sizes=(8, 8), eval_every=0, save_every=0, buffer_size=1000, device="cpu")
    Trainer(config, None, run_dir).run()
    return RunFiles(run_dir)


def saved(files: RunFiles) -> tuple[int, str]:
    payload = load_checkpoint(files.latest)
    return int(payload["counters"]["step"]), str(payload["save_id"])


def test_a_folder_that_saved_after_the_marker_is_kept(tmp_path: Path) -> None:
    # The driver was killed after the seed's last save but before Tune recorded it: going back would
    # train those steps again (and rewrite the metrics of a finished seed).
    files = trained(tmp_path / "seed0", 400)
    assert _prepare_run_folder(files, (200, "older")) == (files.latest, saved(files))


def test_a_folder_behind_the_marker_is_refused_by_name_not_started_over(tmp_path: Path) -> None:
    # e.g. a retry on a node that does not share the sweep folder: its disk holds an older save, or none.
    files = trained(tmp_path / "seed0", 200)
    with pytest.raises(FolderBehindError, match=r"holds step 200, but its trial saved step 400 there: the sweep "
                                                r"folder must be on storage every node shares"):
        _prepare_run_folder(files, (400, "newer"))
    with pytest.raises(FolderBehindError, match="holds no checkpoint"):
        _prepare_run_folder(RunFiles(tmp_path / "elsewhere"), (400, "newer"))


def test_a_seed_that_never_saved_starts_afresh_in_a_cleared_folder(tmp_path: Path) -> None:
    files = RunFiles(tmp_path / "seed0")
    files.run_dir.mkdir()
    files.metrics_path.write_text('{"kind": "eval", "step": 200, "mean": 1.0, "std": 0.0}\n')
    assert _prepare_run_folder(files, None) == (None, None)
    assert not files.metrics_path.exists()


def test_a_config_stopped_with_s_stays_stopped_when_its_trial_is_started_again(tmp_path: Path) -> None:
    # Tune's state may not have recorded the stopped trial's end (a driver killed just after): the config's
    # folder says it was stopped, and none of its seeds trains on.
    from ddpg_tui.sweeps.space import Variant
    from ddpg_tui.sweeps.trial import STOPPED_FILE, ConfigTrial, TrialPlan

    config = DDPGConfig(env_id="Pendulum-v1", total_steps=400, learning_starts=50, batch_size=16, hidden_sizes=(8, 8),
                        eval_every=100, save_every=0, buffer_size=1000, device="cpu")
    seed_dir = tmp_path / "base" / "seed0"
    Trainer(config.replace(total_steps=200), None, seed_dir).run()
    (tmp_path / "base" / STOPPED_FILE).write_text("{}")
    metrics = (seed_dir / "metrics.jsonl").read_bytes()
    reports: list[dict] = []
    plan = TrialPlan(sweep_dir=str(tmp_path), base=config.to_dict(), grid_keys=(), seeds=(0,))
    ConfigTrial(Variant(()), plan, lambda m, checkpoint=None: reports.append(m), str, "x", "n").run({}, 1, None)
    (seed,) = reports[-1]["seed_reports"]
    assert (seed["state"], seed["step"], [e[0] for e in seed["evals"]]) == ("stopped", 200, [100, 200])
    assert (seed_dir / "metrics.jsonl").read_bytes() == metrics


def test_tunes_stop_of_a_trial_waits_for_its_seeds_to_save_and_end(monkeypatch: pytest.MonkeyPatch) -> None:
    # A function trainable's stop does not wait for its thread, and Tune ends the actor when stop returns:
    # a config ASHA stopped lost the saves it makes on its way out, and --reeval found nothing to evaluate.
    import os
    import threading
    import time

    pytest.importorskip("ray")
    from ray.tune.trainable.function_trainable import FunctionTrainable

    from ddpg_tui.sweeps import trial
    from ddpg_tui.sweeps.trial import TrialPlan, config_trainable

    calls: list[str] = []
    monkeypatch.setattr(FunctionTrainable, "cleanup", lambda self: calls.append("tune's cleanup"))
    monkeypatch.setattr(FunctionTrainable, "reset_config",
                        lambda self, config: calls.append(os.environ["TUNE_FUNCTION_THREAD_TIMEOUT_S"]) or True)
    monkeypatch.setenv("TUNE_FUNCTION_THREAD_TIMEOUT_S", "2")
    trainable = config_trainable(TrialPlan(sweep_dir="/nowhere", base={}, grid_keys=()))
    assert trainable.__name__ == "train_trial"
    runner = object.__new__(trainable)

    trial._SEEDS_ENDED.clear()
    threading.Timer(0.4, trial._SEEDS_ENDED.set).start()  # the trial's thread, done saving
    started = time.monotonic()
    runner.cleanup()
    assert time.monotonic() - started >= 0.35 and calls == ["tune's cleanup"]
    assert runner.reset_config({}) is True
    assert float(calls[-1]) >= trial.STOP_JOIN_SECONDS  # a reuse waits for the saves too, not 2 s
