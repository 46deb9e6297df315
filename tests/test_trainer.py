"""The training loop: what it stores, how it is steered from another thread, how it fails."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.checkpoint import load_checkpoint
from agents.config import ConfigError
from agents.events import (
    ConfigChanged,
    EpisodeEnd,
    EvalResult,
    Saved,
    StateChanged,
    StepStats,
    TrainerState,
    TrainingError,
)
from agents.trainer import Trainer


class Recorder(list):
    """A sink that keeps every event."""

    def __call__(self, event: object) -> None:
        self.append(event)

    def of(self, kind: type) -> list:
        return [event for event in self if isinstance(event, kind)]

    def states(self) -> list[TrainerState]:
        return [event.state for event in self.of(StateChanged)]


def test_truncated_transition_is_stored_with_done_zero_and_the_true_final_obs(tiny_config) -> None:
    config = tiny_config.replace(env_id="TestTruncating-v0", total_steps=12, learning_starts=100)
    trainer = Trainer(config)
    trainer.run()
    buffer = trainer.buffer
    assert len(buffer) == 12
    # Episodes of 5 steps: the 5th transition's s' is the real last observation [5, 0],
    # not the reset observation [0, 0], and it must bootstrap (done = 0).
    assert buffer.next_obs[4].tolist() == [5.0, 0.0]
    assert buffer.dones[4] == 0.0
    assert buffer.obs[5].tolist() == [0.0, 0.0]  # the next episode starts from reset
    assert buffer.dones[:12].sum() == 0


def test_terminated_transition_is_stored_with_done_one(tiny_config) -> None:
    config = tiny_config.replace(env_id="TestTerminating-v0", total_steps=7, learning_starts=100)
    trainer = Trainer(config)
    trainer.run()
    assert trainer.buffer.dones[:7].tolist() == [0, 0, 1, 0, 0, 1, 0]
    assert trainer.buffer.next_obs[2].tolist() == [3.0, 0.0]


def test_random_actions_before_learning_starts_then_noisy_policy_within_bounds(tiny_config) -> None:
    config = tiny_config.replace(total_steps=300, learning_starts=150, noise_sigma=5.0)
    trainer = Trainer(config)
    trainer.run()
    actions = trainer.buffer.actions[:300, 0]
    assert np.all(actions >= -2.0) and np.all(actions <= 2.0)
    assert actions[:150].std() > 0.9  # uniform on [-2, 2] has std 1.15
    # sigma 5 of a half-range of 2 saturates most noisy actions at the bounds
    assert np.mean(np.abs(actions[150:]) == 2.0) > 0.5


def test_same_seed_gives_the_same_episode_returns(tiny_config) -> None:
    def returns(seed: int) -> list[float]:
        events = Recorder()
        Trainer(tiny_config.replace(seed=seed), events).run()
        return [e.episode_return for e in events.of(EpisodeEnd)]

    first, second = returns(3), returns(3)
    assert first == second and len(first) == 2
    assert returns(4) != first


def test_states_and_progress_are_reported(tiny_config) -> None:
    events = Recorder()
    outcome = Trainer(tiny_config.replace(eval_every=200), events).run()
    assert outcome.state == TrainerState.FINISHED
    states = events.states()
    assert states[0] == TrainerState.WARMING_UP and TrainerState.TRAINING in states
    assert TrainerState.EVALUATING in states and states[-1] == TrainerState.FINISHED
    assert [e.step for e in events.of(EvalResult)] == [200, 400]
    last = events.of(StepStats)[-1]
    assert (last.step, last.buffer_size, last.updates) == (400, 400, 300)


def run_in_thread(trainer: Trainer) -> threading.Thread:
    thread = threading.Thread(target=trainer.run, daemon=True)
    thread.start()
    return thread


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def test_controls_from_another_thread(tiny_config, tmp_path: Path) -> None:
    events = Recorder()
    trainer = Trainer(tiny_config.replace(total_steps=1_000_000), events, tmp_path / "run")
    thread = run_in_thread(trainer)
    wait_for(lambda: trainer.step > 150)

    trainer.controls.pause()
    wait_for(lambda: TrainerState.PAUSED in events.states())
    paused_at = trainer.step
    time.sleep(0.3)
    assert trainer.step == paused_at

    trainer.controls.evaluate()
    wait_for(lambda: events.of(EvalResult) and events.states()[-1] != TrainerState.EVALUATING)
    assert events.states()[-1] == TrainerState.PAUSED  # evaluation does not unpause
    assert trainer.step == paused_at

    trainer.controls.save()
    wait_for(lambda: events.of(Saved))
    assert load_checkpoint(events.of(Saved)[-1].path)["counters"]["step"] == paused_at

    trainer.controls.set(noise_sigma=0.3, actor_lr=1e-4)
    wait_for(lambda: events.of(ConfigChanged))
    assert events.of(ConfigChanged)[0].changes == {"noise_sigma": 0.3, "actor_lr": 1e-4}
    assert trainer.agent.actor_optimizer.param_groups[0]["lr"] == 1e-4

    trainer.controls.resume()
    wait_for(lambda: trainer.step > paused_at + 50)
    trainer.controls.stop()
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert events.states()[-1] == TrainerState.STOPPED


def _learning_rates_per_update(trainer: Trainer) -> list[tuple[int, float, float]]:
    """Wrap the agent's update to record (env step, actor lr, critic lr) at every call."""
    seen: list[tuple[int, float, float]] = []
    update = trainer.agent.update

    def recording_update(batch):
        seen.append((trainer.step, trainer.agent.actor_optimizer.param_groups[0]["lr"],
                     trainer.agent.critic_optimizer.param_groups[0]["lr"]))
        return update(batch)

    trainer.agent.update = recording_update
    return seen


def test_linear_lr_schedule_decays_both_rates_to_zero_at_total_steps(tiny_config) -> None:
    config = tiny_config.replace(total_steps=200, learning_starts=100, actor_lr=2e-3, critic_lr=1e-3,
                                 lr_schedule="linear")
    trainer = Trainer(config)
    seen = _learning_rates_per_update(trainer)
    trainer.run()
    assert len(seen) == 100
    for step, actor_lr, critic_lr in seen:
        remaining = 1 - step / 200
        assert actor_lr == pytest.approx(2e-3 * remaining)
        assert critic_lr == pytest.approx(1e-3 * remaining)
    assert seen[-1][1:] == (0.0, 0.0)


def test_constant_lr_schedule_keeps_the_configured_rates(tiny_config) -> None:
    trainer = Trainer(tiny_config.replace(total_steps=150, actor_lr=2e-3, critic_lr=1e-3))
    seen = _learning_rates_per_update(trainer)
    trainer.run()
    assert len(seen) == 50
    assert {(a, c) for _, a, c in seen} == {(2e-3, 1e-3)}


def test_switching_from_linear_to_constant_restores_the_configured_rates(tiny_config) -> None:
    config = tiny_config.replace(total_steps=300, learning_starts=100, lr_schedule="linear")
    trainer = Trainer(config)
    seen = _learning_rates_per_update(trainer)
    update = trainer.agent.update

    def switch_at_step_200(batch):
        if trainer.step == 200:
            trainer.controls.set(lr_schedule="constant")
        return update(batch)

    trainer.agent.update = switch_at_step_200
    trainer.run()
    decayed = [a for step, a, _ in seen if step <= 200]
    assert decayed[0] > decayed[-1] and decayed[-1] == pytest.approx(1e-3 / 3)
    assert all(a == 1e-3 and c == 1e-3 for step, a, c in seen if step > 201)


def test_set_refuses_fields_that_cannot_change_live(tiny_config) -> None:
    trainer = Trainer(tiny_config)
    with pytest.raises(ConfigError, match="hidden_sizes cannot change while training runs"):
        trainer.controls.set(hidden_sizes=[8])
    with pytest.raises(ConfigError, match="tau"):
        trainer.controls.set(tau=5)


def test_an_exception_in_training_becomes_an_error_event(tiny_config, monkeypatch) -> None:
    events = Recorder()
    trainer = Trainer(tiny_config, events)

    def explode(batch):
        raise RuntimeError("boom")

    monkeypatch.setattr(trainer.agent, "update", explode)
    outcome = trainer.run()
    assert outcome.state == TrainerState.ERROR
    assert "RuntimeError: boom" in events.of(TrainingError)[0].message
    assert events.states()[-1] == TrainerState.ERROR


def test_divergence_stops_training_and_keeps_the_last_good_checkpoint(tiny_config, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    events = Recorder()
    trainer = Trainer(tiny_config.replace(total_steps=2000, save_every=200), events, run_dir)
    real_update = trainer.agent.update

    def poisoned_update(batch):
        if trainer.step == 300:
            with torch.no_grad():
                next(trainer.agent.critic.parameters()).fill_(float("nan"))
        return real_update(batch)

    trainer.agent.update = poisoned_update
    outcome = trainer.run()
    assert outcome.state == TrainerState.ERROR
    assert "diverged" in events.of(TrainingError)[0].message
    saved = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert saved["counters"]["step"] == 200
    assert all(torch.isfinite(t).all() for t in saved["agent"]["critic"].values())


def test_unwritable_run_dir_trains_on_with_a_warning(tiny_config, tmp_path: Path) -> None:
    from agents.events import Notice

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    events = Recorder()
    outcome = Trainer(tiny_config.replace(total_steps=150), events, blocker / "run").run()
    assert outcome.state == TrainerState.FINISHED
    assert "not writable" in events.of(Notice)[0].message


def test_a_periodic_save_that_fills_the_disk_warns_and_training_goes_on(tiny_config, tmp_path: Path,
                                                                        monkeypatch) -> None:
    import errno

    import agents.checkpoint as checkpoint_module
    from agents.events import Notice

    run_dir = tmp_path / "run"
    events = Recorder()
    real_replace = checkpoint_module.os.replace
    failing_steps = {400}
    trainer = Trainer(tiny_config.replace(total_steps=800, save_every=200), events, run_dir)

    def replace_or_fill_the_disk(source, target):
        if trainer.step in failing_steps:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(checkpoint_module.os, "replace", replace_or_fill_the_disk)
    outcome = trainer.run()
    assert outcome.state == TrainerState.FINISHED and outcome.step == 800
    warnings = [e.message for e in events.of(Notice)]
    assert any("could not save to" in w and "No space left on device" in w and "training goes on" in w
               for w in warnings)
    assert [e.step for e in events.of(Saved) if e.reason == "periodic"] == [200, 600]  # 400 failed, 600 saved
    # Each write failed before its rename, so the files on disk stayed whole and consistent.
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt")["counters"]["step"] == 800
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))


def test_the_previous_checkpoint_still_loads_after_a_failed_save(tiny_config, tmp_path: Path, monkeypatch) -> None:
    import errno

    import agents.checkpoint as checkpoint_module

    run_dir = tmp_path / "run"
    trainer = Trainer(tiny_config.replace(total_steps=1000, save_every=200), None, run_dir)
    real_replace = checkpoint_module.os.replace
    seen_after_failure: list[int] = []

    def replace_or_fill_the_disk(source, target):
        if trainer.step == 400:
            raise OSError(errno.ENOSPC, "No space left on device")
        if trainer.step == 600 and not seen_after_failure:
            seen_after_failure.append(load_checkpoint(run_dir / "checkpoints" / "latest.pt")["counters"]["step"])
        return real_replace(source, target)

    monkeypatch.setattr(checkpoint_module.os, "replace", replace_or_fill_the_disk)
    trainer.run()
    assert seen_after_failure == [200]  # between the failure and the next save, the step-200 checkpoint loads


def test_commands_sent_during_the_final_evaluation_are_answered(tiny_config, tmp_path: Path) -> None:
    from agents.events import Notice

    events = Recorder()
    trainer = Trainer(tiny_config.replace(total_steps=200, eval_every=0), None, tmp_path / "run")

    def sink(event: object) -> None:
        events(event)
        if isinstance(event, StateChanged) and event.state == TrainerState.EVALUATING:
            trainer.controls.evaluate()
            trainer.controls.save()
            trainer.controls.pause()

    trainer.sink = sink
    trainer.run()
    answers = [e.message for e in events.of(Notice)]
    assert "evaluate: answered by the final evaluation at step 200" in answers
    assert any(a.startswith("save: answered by the final save") and a.endswith("latest.pt") for a in answers)
    assert "pause: not done, training had already finished" in answers
    assert trainer.controls.pause() is False  # and later requests are refused, not queued for nobody


def test_eval_every_zero_still_ends_with_one_evaluation(tiny_config) -> None:
    events = Recorder()
    Trainer(tiny_config.replace(total_steps=300, eval_every=0), events).run()
    assert [e.step for e in events.of(EvalResult)] == [300]


@pytest.mark.parametrize(("cores", "front_end", "runs", "expected"),
                         [(2, "headless", 1, 2), (2, "app", 1, 1), (8, "app", 1, 7), (8, "headless", 4, 2),
                          (2, "headless", 3, 1), (1, "app", 1, 1)])
def test_auto_threads_fit_where_the_run_happens(monkeypatch, cores: int, front_end: str, runs: int,
                                                expected: int) -> None:
    from agents import trainer as trainer_module

    monkeypatch.setattr(trainer_module.os, "cpu_count", lambda: cores)
    assert trainer_module.default_threads(front_end, runs) == expected


def test_a_headless_trainer_times_one_against_every_core_unless_threads_is_set(tiny_config, monkeypatch) -> None:
    from agents import trainer as trainer_module

    monkeypatch.setattr(trainer_module.os, "cpu_count", lambda: 2)
    headless = Trainer(tiny_config.replace(threads=0), front_end="headless")
    assert headless.threads == 1 and headless.thread_tuner is not None  # starts at 1, then times both
    assert headless.thread_tuner.candidates == (1, 2)
    assert Trainer(tiny_config.replace(threads=0)).threads == 1  # the app's default leaves the UI a core
    assert Trainer(tiny_config.replace(threads=1), front_end="headless").threads == 1
    torch.set_num_threads(1)


def test_non_finite_second_critic_is_caught_before_it_is_saved(tiny_config, tmp_path: Path) -> None:
    # No updates run (learning_starts > total_steps), so only the pre-save weight check can
    # see the poisoned second critic; it used to check the actor and the first critic only.
    run_dir = tmp_path / "run"
    events = Recorder()
    config = tiny_config.replace(twin_critics=True, total_steps=300, learning_starts=10_000, save_every=200)
    trainer = Trainer(config, events, run_dir)
    real_save = trainer._save

    def poisoned_save(reason: str) -> None:
        with torch.no_grad():
            next(trainer.agent.critic2.parameters()).fill_(float("nan"))
        real_save(reason)

    trainer._save = poisoned_save
    outcome = trainer.run()
    assert outcome.state == TrainerState.ERROR
    assert "non-finite second critic weights" in events.of(TrainingError)[0].message
    assert not (run_dir / "checkpoints" / "latest.pt").exists()


def test_non_finite_second_critic_makes_the_update_loss_non_finite(tiny_config) -> None:
    trainer = Trainer(tiny_config.replace(twin_critics=True))
    batch = trainer.buffer
    for _ in range(64):
        batch.add(np.zeros(3, np.float32), np.zeros(1, np.float32), 0.0, np.zeros(3, np.float32), False)
    with torch.no_grad():
        next(trainer.agent.critic2.parameters()).fill_(float("nan"))
    losses = trainer.agent.update(batch.sample(32))
    assert not torch.isfinite(losses.critic_loss)


def test_closing_lines_after_a_stop_without_saving_say_which_step_the_kept_checkpoint_holds(
        tiny_config, tmp_path: Path) -> None:
    from ddpg_tui.request import closing_lines

    run_dir = tmp_path / "run"
    trainer = Trainer(tiny_config.replace(total_steps=2000, save_every=200), None, run_dir)
    real_update = trainer.agent.update

    def update_then_quit_without_saving(batch):
        if trainer.step == 300:
            trainer.controls.stop(save=False)  # what the app's "quit without saving" asks
        return real_update(batch)

    trainer.agent.update = update_then_quit_without_saving
    outcome = trainer.run()
    assert outcome.state == TrainerState.STOPPED and outcome.step > 200
    assert outcome.checkpoint_step == 200 == load_checkpoint(outcome.checkpoint)["counters"]["step"]
    latest = run_dir / "checkpoints" / "latest.pt"
    assert f"checkpoint {latest} (step 200; the steps after it were not saved)" in closing_lines(outcome)


def test_closing_lines_after_a_saved_stop_name_the_checkpoint_alone(tiny_config, tmp_path: Path) -> None:
    from ddpg_tui.request import closing_lines

    outcome = Trainer(tiny_config.replace(total_steps=250), None, tmp_path / "run").run()
    assert outcome.checkpoint_step == outcome.step == 250
    assert f"checkpoint {outcome.checkpoint}" in closing_lines(outcome)
