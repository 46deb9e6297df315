"""Resume is exact, or says exactly how it is not."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest
import torch

from agents.checkpoint import load_checkpoint, save_checkpoint
from agents.checkpoint_payload import RunFinishedError
from agents.config import DDPGConfig
from agents.events import EpisodeEnd, EvalResult, Notice, Saved, UpdateStats
from agents.schedules import LinearDecay
from agents.trainer import Trainer


class Recorder(list):
    def __call__(self, event: object) -> None:
        self.append(event)

    def of(self, kind: type) -> list:
        return [event for event in self if isinstance(event, kind)]

    def notices(self) -> str:
        return "\n".join(event.message for event in self.of(Notice))


def stop_after_first_periodic_save(trainer: Trainer, events: Recorder) -> None:
    """Make `trainer` stop without another save right after its first periodic save, as a crash would."""

    def sink(event: object) -> None:
        events(event)
        if isinstance(event, Saved) and event.reason == "periodic":
            trainer.controls.stop(save=False)

    trainer.sink = sink


def updates_at_steps(trainer: Trainer) -> list[tuple[int, float]]:
    """Record (env step, actor lr) at every update of `trainer`."""
    seen: list[tuple[int, float]] = []
    update = trainer.agent.update

    def recording(batch):
        seen.append((trainer.step, trainer.agent.actor_optimizer.param_groups[0]["lr"]))
        return update(batch)

    trainer.agent.update = recording
    return seen


TD3 = {"twin_critics": True, "policy_delay": 3, "target_noise": 0.2, "target_noise_clip": 0.5}


@pytest.mark.parametrize(("noise", "lr_schedule", "td3"),
                         [("gaussian", "constant", {}), ("ou", "linear", {}), ("gaussian", "linear", TD3)],
                         ids=["ddpg", "ou-linear", "td3"])
def test_resume_from_a_periodic_save_is_bit_exact(tiny_config: DDPGConfig, tmp_path: Path, noise: str,
                                                  lr_schedule: str, td3: dict) -> None:
    # save_every 150 falls mid-episode (Pendulum's are 200 steps); the save waits for step 200.
    config = tiny_config.replace(total_steps=400, save_every=150, noise=noise, lr_schedule=lr_schedule,
                                 noise_sigma=0.3, **td3)
    straight = Recorder()
    full = Trainer(config, straight)
    full.run()

    first = Recorder()
    interrupted = Trainer(config, first, tmp_path / "run")
    stop_after_first_periodic_save(interrupted, first)
    interrupted.run()
    assert [e.step for e in first.of(Saved)] == [200]
    payload = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert payload["at_episode_start"] is True

    second = Recorder()
    resumed = Trainer(None, second, tmp_path / "run", resume_from=tmp_path / "run" / "checkpoints" / "latest.pt")
    assert resumed.step == 200 and not resumed.resume_notes
    resumed.run()

    returns = [e.episode_return for e in first.of(EpisodeEnd) + second.of(EpisodeEnd)]
    assert returns == [e.episode_return for e in straight.of(EpisodeEnd)]
    for a, b in zip(full.agent.actor.parameters(), resumed.agent.actor.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(full.agent._target_params, resumed.agent._target_params, strict=True):
        assert torch.equal(a, b)
    assert full.agent.actor_optimizer.param_groups[0]["lr"] == resumed.agent.actor_optimizer.param_groups[0]["lr"]
    # The reported losses too: with a policy delay the first updates after the resume report the
    # last actor loss, which the checkpoint carries.
    losses = [(e.step, e.critic_loss, e.actor_loss) for e in first.of(UpdateStats) + second.of(UpdateStats)]
    assert losses == [(e.step, e.critic_loss, e.actor_loss) for e in straight.of(UpdateStats)]


def test_a_requested_save_is_immediate_and_its_resume_says_the_episode_restarts(tiny_config, tmp_path: Path) -> None:
    trainer = Trainer(tiny_config.replace(total_steps=1000), None, tmp_path / "run")
    real_update = trainer.agent.update

    def save_then_stop_at_step_250(batch):
        if trainer.step == 250:
            trainer.controls.save()
            trainer.controls.stop(save=False)
        return real_update(batch)

    trainer.agent.update = save_then_stop_at_step_250
    trainer.run()
    payload = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert payload["counters"]["step"] == 250 and payload["at_episode_start"] is False

    events = Recorder()
    resumed = Trainer(None, events, tmp_path / "run", resume_from=tmp_path / "run" / "checkpoints" / "latest.pt",
                      total_steps=300)
    resumed.run()
    assert "saved mid-episode at step 250; that episode restarts" in events.notices()
    assert events.of(EpisodeEnd) == []  # the restarted episode (200 steps) cannot end by step 300


def resume_without_buffer(tiny_config, tmp_path: Path, damage) -> tuple[Trainer, Recorder, list]:
    config = tiny_config.replace(total_steps=600, learning_starts=100, batch_size=32, save_every=200)
    first = Trainer(config, None, tmp_path / "run")
    stop_after_first_periodic_save(first, Recorder())
    first.run()
    checkpoints = tmp_path / "run" / "checkpoints"
    damage(checkpoints)
    events = Recorder()
    resumed = Trainer(None, events, tmp_path / "run", resume_from=checkpoints / "latest.pt")
    seen = updates_at_steps(resumed)
    resumed.run()
    return resumed, events, seen


def test_a_missing_buffer_warns_and_warms_up_again_before_updating(tiny_config, tmp_path: Path) -> None:
    resumed, events, seen = resume_without_buffer(
        tiny_config, tmp_path, lambda checkpoints: (checkpoints / "replay_buffer.pt").unlink())
    assert "resuming without the replay buffer (replay_buffer.pt is missing); collecting 100 steps" \
        in events.notices()
    # Without the fix the first update came at step 201, on a batch drawn from one transition.
    assert seen[0][0] == 301
    assert len(resumed.buffer) == 400


def test_a_buffer_from_another_save_is_not_used(tiny_config, tmp_path: Path) -> None:
    def stale_buffer(checkpoints: Path) -> None:
        # A crash between the two writes: the buffer is from another save than latest.pt.
        saved = load_checkpoint(checkpoints / "replay_buffer.pt")
        save_checkpoint(checkpoints / "replay_buffer.pt", {**saved, "save_id": "another-save"})

    _resumed, events, seen = resume_without_buffer(tiny_config, tmp_path, stale_buffer)
    assert "resuming without the replay buffer (replay_buffer.pt was saved at step 200, not with this checkpoint)" \
        in events.notices()
    assert seen[0][0] == 301


def test_best_pt_resume_warns_about_the_buffer(tiny_config, tmp_path: Path) -> None:
    config = tiny_config.replace(total_steps=400, save_every=0)
    trainer = Trainer(config, None, tmp_path / "run")
    trainer.run()
    checkpoints = tmp_path / "run" / "checkpoints"
    # best.pt as an evaluation at step 200 would have written it: a checkpoint without a buffer of its own.
    payload = load_checkpoint(checkpoints / "latest.pt")
    payload["counters"] = {**payload["counters"], "step": 200}
    payload["save_id"] = "best-save"
    save_checkpoint(checkpoints / "best.pt", payload)
    events = Recorder()
    resumed = Trainer(None, events, tmp_path / "run", resume_from=checkpoints / "best.pt")
    assert "resuming without the replay buffer (replay_buffer.pt was saved at step 400" in resumed.resume_notes[0]
    assert resumed.learning_from == 200 + 100


def test_extending_a_linear_schedule_never_makes_the_rate_jump(tiny_config, tmp_path: Path) -> None:
    config = tiny_config.replace(total_steps=400, learning_starts=100, save_every=200, lr_schedule="linear",
                                 actor_lr=1e-3)
    first = Trainer(config, None, tmp_path / "run")
    before = updates_at_steps(first)
    stop_after_first_periodic_save(first, Recorder())
    first.run()
    resumed = Trainer(None, None, tmp_path / "run", resume_from=tmp_path / "run" / "checkpoints" / "latest.pt",
                      total_steps=1000)
    after = updates_at_steps(resumed)
    resumed.run()
    rates = [lr for _, lr in before + after]
    # Continuous: no step between consecutive updates is larger than the decay's own slope allows.
    largest_step = max(abs(a - b) for a, b in itertools.pairwise(rates))
    assert largest_step <= 1e-3 / 400 + 1e-12
    assert after[0][1] == pytest.approx(before[-1][1], abs=1e-3 / 400)
    assert all(a >= b for a, b in itertools.pairwise(rates))  # it only ever falls
    assert after[-1] == (1000, 0.0)
    # From the rate reached at step 200 (half of 1e-3) down to 0 at the new total.
    assert after[0][1] == pytest.approx(0.5e-3 * (1000 - 201) / (1000 - 200))


def test_a_live_total_steps_change_retargets_the_decay_without_a_jump() -> None:
    decay = LinearDecay.over(400)
    assert decay(200) == 0.5
    longer = decay.retargeted(200, 1000)
    assert longer(200) == 0.5 and longer(600) == pytest.approx(0.25) and longer(1000) == 0.0


def test_resuming_rewrites_metrics_so_that_no_step_appears_twice(tiny_config, tmp_path: Path) -> None:
    config = tiny_config.replace(total_steps=600, save_every=200, eval_every=100)
    checkpoints = tmp_path / "run" / "checkpoints"
    backup = tmp_path / "backup"

    def keep_the_step_200_save(event: object) -> None:
        if isinstance(event, Saved) and event.reason == "periodic" and event.step == 200:
            shutil.copytree(checkpoints, backup)

    Trainer(config.replace(save_every=200), keep_the_step_200_save, tmp_path / "run").run()
    # A crash after step 200's save would have left these rows beyond it in metrics.jsonl.
    shutil.rmtree(checkpoints)
    shutil.copytree(backup, checkpoints)
    Trainer(None, None, tmp_path / "run", resume_from=checkpoints / "latest.pt").run()

    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    for kind in ("episode", "update", "eval"):
        steps = [row["step"] for row in rows if row["kind"] == kind]
        assert steps == sorted(set(steps)), kind
    assert [row["step"] for row in rows if row["kind"] == "eval"] == [100, 200, 300, 400, 500, 600]


def test_a_finished_run_is_refused_with_how_to_extend_it(tiny_config, tmp_path: Path) -> None:
    Trainer(tiny_config.replace(total_steps=150), None, tmp_path / "run").run()
    with pytest.raises(RunFinishedError, match=r"run already finished 150 of 150 steps; to train on, give it more: "
                       r"ddpg-tui train --resume .*run --steps N, with N > 150"):
        Trainer(None, None, tmp_path / "run", resume_from=tmp_path / "run" / "checkpoints" / "latest.pt")


def test_a_stopped_evaluation_does_not_replace_best_pt(tiny_config, tmp_path: Path) -> None:
    config = tiny_config.replace(total_steps=1000, eval_every=200, eval_episodes=3)
    events = Recorder()
    trainer = Trainer(config, None, tmp_path / "run")

    def sink(event: object) -> None:
        events(event)
        if isinstance(event, EpisodeEnd) and event.step == 400:
            trainer.controls.stop(save=False)  # lands as the evaluation at step 400 begins

    trainer.sink = sink
    trainer.run()
    assert [e.step for e in events.of(EvalResult)] == [200]
    assert "evaluation at step 400 stopped after 1 of 3 episodes; not counted" in events.notices()
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")["counters"]["step"] == 200


def test_a_trainer_continues_exactly_from_another_trainers_state_dict(tiny_config: DDPGConfig) -> None:
    # state_dict / load_state_dict, as torch modules have them, with no file in between: the payload
    # (checkpoint_payload.py) builds on these and no longer sets the trainer's fields itself.
    straight = Recorder()
    Trainer(tiny_config, straight).run()

    first = Recorder()
    half = Trainer(tiny_config, first)

    def sink(event: object) -> None:
        first(event)
        if isinstance(event, EpisodeEnd) and event.step == 200:
            half.controls.stop(save=False)

    half.sink = sink
    half.run()
    assert half.step == 200 and half.at_episode_start

    second = Recorder()
    resumed = Trainer(tiny_config, second)
    assert resumed.load_state_dict(half.state_dict(), source="half") == []
    resumed.buffer.load_state_dict(half.buffer.state_dict())
    assert resumed.step == 200
    resumed.run()
    returns = [e.episode_return for e in first.of(EpisodeEnd) + second.of(EpisodeEnd)]
    assert returns == [e.episode_return for e in straight.of(EpisodeEnd)]


def test_steps_behind_a_stopped_run_say_where_the_run_is(tiny_config, tmp_path: Path) -> None:
    # A run stopped at 150 of 1,000, resumed with --steps 100: it has not "finished 150 of 100".
    Trainer(tiny_config.replace(total_steps=150), None, tmp_path / "run").run()
    with pytest.raises(RunFinishedError, match=r"run is at step 150, past --steps 100; to train on, give it more: "
                       r"ddpg-tui train --resume .*run --steps N, with N > 150"):
        Trainer(None, None, tmp_path / "run", resume_from=tmp_path / "run" / "checkpoints" / "latest.pt",
                total_steps=100)


def test_a_run_stopped_at_an_episode_end_and_resumed_writes_the_metrics_of_an_uninterrupted_run(
        tiny_config: DDPGConfig, tmp_path: Path) -> None:
    # What "keep training in the background" does: stop at the next episode end (asked mid-episode, at
    # step 250), save, and let another trainer resume from the save; on the CPU, row for row the same run.
    import json

    config = tiny_config.replace(total_steps=600, eval_every=300)
    Trainer(config, None, tmp_path / "straight").run()

    first = Trainer(config, None, tmp_path / "handed-over")
    real_update = first.agent.update

    def ask_at_step_250(batch):
        if first.step == 250:
            first.controls.stop_at_episode_end()
        return real_update(batch)

    first.agent.update = ask_at_step_250
    first.run()
    assert first.step == 400  # Pendulum's episodes are 200 steps: the next end after 250
    checkpoint = tmp_path / "handed-over" / "checkpoints" / "latest.pt"
    assert load_checkpoint(checkpoint)["at_episode_start"] is True
    resumed = Trainer(None, None, tmp_path / "handed-over", resume_from=checkpoint)
    assert not resumed.resume_notes
    resumed.run()

    def curves(run: str) -> list[dict]:
        rows = [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        return [row for row in rows if row["kind"] in ("episode", "update", "eval")]

    assert curves("handed-over") == curves("straight")
