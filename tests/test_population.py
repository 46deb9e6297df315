"""The population trainer: each member is, update for update, the standalone run with its seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.checkpoint import load_checkpoint
from agents.config import DDPGConfig
from agents.events import Event, UpdateStats
from agents.population import PopulationTrainer
from agents.replay_buffer import ReplayBuffer
from agents.trainer import Trainer

SEEDS = [3, 5, 8]
RTOL = 1e-5  # the bar: float rounding, not a different run

TINY = DDPGConfig(env_id="Pendulum-v1", total_steps=500, learning_starts=200, batch_size=32, hidden_sizes=(16, 16),
                  buffer_size=1_000, eval_every=250, eval_episodes=2, save_every=0, threads=1, device="cpu")
TD3 = TINY.replace(twin_critics=True, policy_delay=2, target_noise=0.2)


def record_losses(agent: object) -> list[torch.Tensor]:
    """Every update's (critic loss, actor loss, mean Q), as [3] or, for a population, [3, N]."""
    rows: list[torch.Tensor] = []
    update = agent.update  # type: ignore[attr-defined]

    def recorded(batch: object) -> object:
        losses = update(batch)
        rows.append(torch.stack([losses.critic_loss, losses.actor_loss, losses.mean_q]).double())
        return losses

    agent.update = recorded  # type: ignore[attr-defined]
    return rows


def standalone(config: DDPGConfig, seed: int, run_dir: Path | None = None,
               updates: list[UpdateStats] | None = None) -> tuple[torch.Tensor, float]:
    def sink(event: Event) -> None:
        if updates is not None and isinstance(event, UpdateStats):
            updates.append(event)

    trainer = Trainer(config.replace(seed=seed), sink, run_dir=run_dir, front_end="headless")
    rows = record_losses(trainer.agent)
    outcome = trainer.run()
    assert outcome.last_eval is not None
    return torch.stack(rows), outcome.last_eval.mean


@pytest.mark.parametrize("config", [TINY, TD3], ids=["ddpg", "td3"])
def test_each_member_makes_the_updates_of_its_standalone_run(config: DDPGConfig) -> None:
    updates: dict[int, list[UpdateStats]] = {k: [] for k in range(len(SEEDS))}

    def sink(k: int, event: Event) -> None:
        if isinstance(event, UpdateStats):
            updates[k].append(event)

    population = PopulationTrainer(config, SEEDS, sink=sink)
    rows = record_losses(population.agent)
    outcome = population.run()
    together = torch.stack(rows)  # [updates, 3, N]
    assert together.shape == (300, 3, len(SEEDS))
    for k, seed in enumerate(SEEDS):
        alone_updates: list[UpdateStats] = []
        alone, eval_mean = standalone(config, seed, updates=alone_updates)
        # Every one of the 300 updates: same batches, same noise, same weights up to rounding.
        torch.testing.assert_close(together[:, :, k], alone, rtol=RTOL, atol=1e-7)
        assert outcome.last_evals[k] is not None
        assert outcome.last_evals[k].mean == pytest.approx(eval_mean, rel=RTOL)
        # And what the member reports (metrics.jsonl's update rows) is what its run reports.
        assert [(u.step, u.updates) for u in updates[k]] == [(u.step, u.updates) for u in alone_updates]
        for ours, theirs in zip(updates[k], alone_updates, strict=True):
            assert (ours.critic_loss, ours.actor_loss, ours.mean_q) == pytest.approx(
                (theirs.critic_loss, theirs.actor_loss, theirs.mean_q), rel=RTOL)


def test_the_members_differ_from_each_other() -> None:
    """A population of one seed repeated would pass the test above only if each member used its own streams."""
    population = PopulationTrainer(TD3.replace(total_steps=260, eval_every=0), [0, 1])
    rows = record_losses(population.agent)
    population.run()
    losses = torch.stack(rows)
    assert not torch.allclose(losses[:, :, 0], losses[:, :, 1])


def test_the_replay_buffers_cost_what_single_buffers_do() -> None:
    population = PopulationTrainer(TINY, SEEDS)
    single = ReplayBuffer(TINY.buffer_size, population.spec.obs_dim, population.spec.act_dim)
    assert population.pool.nbytes == len(SEEDS) * single.nbytes
    # Each member's view shares the pool's memory: nothing is copied per member.
    assert all(np.shares_memory(view.obs, population.pool.obs) for view in population.pool.members)


def test_seeds_must_be_distinct() -> None:
    with pytest.raises(ValueError, match="distinct"):
        PopulationTrainer(TINY, [1, 1])


def test_a_member_folder_is_an_ordinary_run_folder(tmp_path: Path) -> None:
    config = TINY.replace(total_steps=400, eval_every=0)  # 400: an episode boundary, so a resume is exact
    folders = [tmp_path / f"seed{seed}" for seed in SEEDS[:2]]
    PopulationTrainer(config, SEEDS[:2], run_dirs=folders).run()
    alone_dir = tmp_path / "alone"
    standalone(config, SEEDS[1], run_dir=alone_dir)
    member = folders[1]
    assert (member / "config.toml").is_file()
    kinds = {json.loads(line)["kind"] for line in (member / "metrics.jsonl").read_text().splitlines()}
    assert {"update", "eval", "episode"} <= kinds
    # The checkpoint a standalone run with the same seed writes, weights and Adam moments included.
    ours, theirs = (load_checkpoint(d / "checkpoints" / "latest.pt") for d in (member, alone_dir))
    assert ours.keys() == theirs.keys() and ours["counters"]["step"] == theirs["counters"]["step"] == 400
    for part in ("actor", "critic", "actor_target", "critic_target"):
        for name, tensor in theirs["agent"][part].items():
            torch.testing.assert_close(ours["agent"][part][name], tensor, rtol=RTOL, atol=1e-6)
    ours_adam, theirs_adam = ours["agent"]["critic_optimizer"]["state"], theirs["agent"]["critic_optimizer"]["state"]
    for i, state in theirs_adam.items():
        torch.testing.assert_close(ours_adam[i]["exp_avg"], state["exp_avg"], rtol=1e-4, atol=1e-6)
    # `ddpg-tui eval` on the member folder gives its run's final evaluation.
    result = subprocess.run([sys.executable, "-m", "ddpg_tui", "eval", str(member), "--episodes", "2", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    final = [json.loads(line) for line in (member / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "eval"][-1]
    assert json.loads(result.stdout)["mean"] == pytest.approx(final["mean"], rel=RTOL)
    # And `train --resume` takes it up as its own: buffer, generators and Adam state all fit.
    resumed = Trainer(None, run_dir=member, resume_from=member / "checkpoints" / "latest.pt", total_steps=450,
                      front_end="headless")
    assert resumed.resume_notes == [] and len(resumed.buffer) == 400
    assert resumed.run().step == 450


def _saved_steps(run_dir: Path) -> list[tuple[str, int]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(row["reason"], row["step"]) for row in rows if row["kind"] == "save"]


def test_one_set_of_controls_pauses_saves_and_stops_every_member(tmp_path: Path) -> None:
    # The keys act on the whole population: a pause, a save and a stop reach every member's folder.
    from agents.controls import Controls
    from agents.events import StateChanged, TrainerState

    controls = Controls()
    states: dict[int, list[TrainerState]] = {k: [] for k in range(len(SEEDS))}

    def sink(k: int, event: Event) -> None:
        if isinstance(event, StateChanged):
            states[k].append(event.state)
            if k == 0 and event.state == TrainerState.TRAINING and TrainerState.PAUSED not in states[0]:
                controls.pause()
                controls.save()
                controls.resume()
        if k == 0 and isinstance(event, UpdateStats) and event.step >= 300:
            controls.stop()

    folders = [tmp_path / f"seed-{seed}" for seed in SEEDS]
    config = TINY.replace(total_steps=100_000, eval_every=0)
    outcome = PopulationTrainer(config, SEEDS, folders, sink=sink, controls=controls).run()
    assert outcome.state == TrainerState.STOPPED and 300 <= outcome.step < 1_000
    for k, folder in enumerate(folders):
        assert TrainerState.PAUSED in states[k] and states[k][-1] == TrainerState.STOPPED
        assert [reason for reason, _ in _saved_steps(folder)] == ["requested", "interrupted"]
        assert load_checkpoint(folder / "checkpoints" / "latest.pt")["counters"]["step"] == outcome.step
    assert not controls.pause()  # after the end, requests are refused, not queued


def test_a_stop_without_saving_leaves_no_checkpoint(tmp_path: Path) -> None:
    from agents.controls import Controls

    controls = Controls()

    def sink(k: int, event: Event) -> None:
        if k == 0 and isinstance(event, UpdateStats):
            controls.stop(save=False)

    folders = [tmp_path / f"seed-{seed}" for seed in SEEDS]
    PopulationTrainer(TINY.replace(total_steps=100_000, eval_every=0), SEEDS, folders, sink=sink,
                      controls=controls).run()
    assert all(_saved_steps(folder) == [] for folder in folders)


def after_steps(trainer: Trainer | PopulationTrainer, plan: dict[int, list[dict]]) -> None:
    """Queue the changes plan[N] right after env step N, so they apply before step N + 1 (test_live_changes)."""
    real = trainer._env_step

    def step() -> None:
        real()
        for changes in plan.pop(trainer.step, []):
            trainer.controls.set(**changes)

    trainer._env_step = step  # type: ignore[method-assign]


# Mid-episode (pendulum's are 200 steps), after the warm-up; every kind of live field: the optimizers' rates,
# the update's constants, the noise (a new OU process), the batch, the schedule and the horizon.
CHANGES = {250: [{"actor_lr": 5e-4, "tau": 0.01, "gamma": 0.95, "noise_sigma": 0.3}],
           330: [{"batch_size": 16, "noise": "ou", "ou_theta": 0.3, "gradient_steps": 2}],
           410: [{"lr_schedule": "linear", "total_steps": 520, "eval_every": 130}]}


@pytest.mark.parametrize("config", [TINY, TD3.replace(target_noise=0.1)], ids=["ddpg", "td3"])
def test_a_live_change_reaches_every_member_as_it_reaches_its_standalone_run(config: DDPGConfig,
                                                                            tmp_path: Path) -> None:
    from agents.run_files import effective_config

    if config.twin_critics:
        changes_here = {**CHANGES, 330: [{**CHANGES[330][0], "policy_delay": 3, "target_noise": 0.3}]}
    else:
        changes_here = CHANGES
    folders = [tmp_path / "together" / f"seed-{seed}" for seed in SEEDS]
    population = PopulationTrainer(config, SEEDS, folders)
    after_steps(population, {step: list(c) for step, c in changes_here.items()})
    rows = record_losses(population.agent)
    outcome = population.run()
    together = torch.stack(rows)
    assert outcome.step == 520 and together.shape[0] > 300, "the changes took: 2 updates a step, a new horizon"
    for k, seed in enumerate(SEEDS):
        trainer = Trainer(config.replace(seed=seed), None, run_dir=tmp_path / "alone" / f"seed-{seed}",
                          front_end="headless")
        after_steps(trainer, {step: list(c) for step, c in changes_here.items()})
        alone_rows = record_losses(trainer.agent)
        alone_outcome = trainer.run()
        torch.testing.assert_close(together[:, :, k], torch.stack(alone_rows), rtol=RTOL, atol=1e-7)
        assert outcome.last_evals[k].mean == pytest.approx(alone_outcome.last_eval.mean, rel=RTOL)
        # The member's folder records the changes as the standalone run's does: rows, checkpoint, effective config.
        member_changes = _change_rows(folders[k])
        assert member_changes == _change_rows(tmp_path / "alone" / f"seed-{seed}")
        assert [(r["step"], r["field"]) for r in member_changes] == [
            (step, name) for step, cs in changes_here.items() for c in cs for name in c]
        saved = load_checkpoint(folders[k] / "checkpoints" / "latest.pt")["config"]
        assert saved["seed"] == seed and saved["tau"] == 0.01 and saved["noise"] == "ou" and saved["total_steps"] == 520
        effective, changed_at = effective_config(folders[k])
        assert effective["hyperparameters"]["batch_size"] == 16 and changed_at["batch_size"] == 330


def _change_rows(run_dir: Path) -> list[dict]:
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "change"]


def _update_rows(run_dir: Path) -> list[tuple[int, float, float, float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["critic_loss"], r["actor_loss"], r["mean_q"]) for r in rows if r["kind"] == "update"]


@pytest.mark.parametrize("config", [TINY, TD3], ids=["ddpg", "td3"])
def test_a_resumed_population_continues_as_if_never_stopped(config: DDPGConfig, tmp_path: Path) -> None:
    # Saved at step 400 (an episode boundary: Pendulum's episodes are 200 steps), then resumed to 700:
    # every member's updates after 400 are those of a population that trained to 700 at once.
    config = config.replace(total_steps=400, eval_every=200)
    straight = [tmp_path / "straight" / f"seed-{s}" for s in SEEDS]
    split = [tmp_path / "split" / f"seed-{s}" for s in SEEDS]
    PopulationTrainer(config.replace(total_steps=700), SEEDS, straight).run()
    PopulationTrainer(config, SEEDS, split).run()
    resumed = PopulationTrainer.resume(split, total_steps=700)
    assert resumed.step == 400 and resumed.resume_notes == []
    outcome = resumed.run()
    assert outcome.step == 700
    for a, b in zip(straight, split, strict=True):
        ours, theirs = _update_rows(b), _update_rows(a)
        assert [row[0] for row in ours] == [row[0] for row in theirs]  # no step twice, none missing
        np.testing.assert_allclose(np.array(ours)[:, 1:], np.array(theirs)[:, 1:], rtol=1e-6)
        assert load_checkpoint(b / "checkpoints" / "latest.pt")["counters"]["step"] == 700
        # --steps at resume is a change of the record, as a single run's is: the folder's effective config says 700.
        assert [(r["step"], r["field"], r["old"], r["new"], r["source"]) for r in _change_rows(b)] == [
            (400, "total_steps", 400, 700, "resume")]


def test_a_horizon_lowered_live_to_the_step_reached_ends_there_as_a_standalone_run_does(tmp_path: Path) -> None:
    config = TINY.replace(eval_every=100)
    population = PopulationTrainer(config, SEEDS[:2])
    after_steps(population, {250: [{"total_steps": 250}]})
    outcome = population.run()
    trainer = Trainer(config.replace(seed=SEEDS[0]), None, front_end="headless")
    after_steps(trainer, {250: [{"total_steps": 250}]})
    alone = trainer.run()
    assert outcome.step == alone.step == 250
    assert [e.step for e in outcome.last_evals] == [alone.last_eval.step] * 2 == [250, 250]


def test_members_saved_at_different_steps_are_not_resumed_as_one(tmp_path: Path) -> None:
    from agents.checkpoint import CheckpointError

    folders = [tmp_path / f"seed-{s}" for s in SEEDS[:2]]
    PopulationTrainer(TINY.replace(total_steps=400), SEEDS[:2], folders).run()
    Trainer(None, None, folders[1], resume_from=folders[1] / "checkpoints" / "latest.pt", total_steps=600,
            front_end="headless").run()
    with pytest.raises(CheckpointError, match="saved at different steps \\(400, 600\\)"):
        PopulationTrainer.resume(folders, total_steps=900)


def test_over_eight_seeds_the_members_final_evaluations_agree_with_standalone_runs() -> None:
    # Rounding differences grow over a run, so single seeds end apart; the statistics must not.
    # (benchmarks/population_agreement.py does the same at the preset's size: 8 seeds x 10,000 steps.)
    seeds = list(range(8))
    config = TINY.replace(total_steps=1_200, eval_every=0, eval_episodes=3)
    ours = PopulationTrainer(config, seeds).run()
    population = np.array([ev.mean for ev in ours.last_evals if ev is not None])
    alone = np.array([standalone(config, seed)[1] for seed in seeds])
    q1, median, q3 = np.percentile(alone, [25, 50, 75])
    p1, p_median, p3 = np.percentile(population, [25, 50, 75])
    assert len(population) == 8
    assert q1 <= p_median <= q3 and p1 <= median <= p3


def test_while_recording_each_member_records_the_episode_its_standalone_run_records() -> None:
    import threading

    from agents.events import EvalRecording

    config = TINY.replace(total_steps=300, eval_every=300, eval_episodes=1)
    recordings: dict[int, list[EvalRecording]] = {k: [] for k in range(len(SEEDS))}

    def sink(k: int, event: Event) -> None:
        if isinstance(event, EvalRecording):
            recordings[k].append(event)

    PopulationTrainer(config, SEEDS, sink=sink).run()
    assert recordings == {k: [] for k in range(len(SEEDS))}, "nobody watched: nothing recorded"
    watching = threading.Event()
    watching.set()
    PopulationTrainer(config, SEEDS, sink=sink, record_evaluations=watching).run()
    for k, seed in enumerate(SEEDS):
        alone: list[EvalRecording] = []
        Trainer(config.replace(seed=seed), alone.append, front_end="headless", record_evaluations=watching).run()
        alone = [e for e in alone if isinstance(e, EvalRecording)]
        (ours,), (theirs,) = recordings[k], alone
        assert (ours.step, ours.env_id, ours.seed, len(ours.actions)) == (theirs.step, theirs.env_id, theirs.seed, 200)
        np.testing.assert_allclose(ours.actions, theirs.actions, rtol=RTOL, atol=1e-6)
        np.testing.assert_allclose(ours.rewards, theirs.rewards, rtol=RTOL, atol=1e-5)
