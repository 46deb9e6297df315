"""TensorBoard event files, read back with TensorBoard's own reader and checked against metrics.jsonl."""

from __future__ import annotations

import statistics
import sys
import threading
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboardX.event_file_writer import _EventLoggerThread

from agents.config import DDPGConfig
from agents.events import EpisodeEnd, Saved
from agents.run_files import read_rows
from agents.schedules import LinearDecay
from agents.tensorboard_log import EPISODE_WINDOW
from agents.trainer import Trainer

EPISODE_LENGTH = 5


class VaryingReturnsEnv(gym.Env):
    """Five-step episodes whose return depends on how many episodes came before: the window mean moves."""

    observation_space = gym.spaces.Box(-10.0, 10.0, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def __init__(self) -> None:
        self.t = 0
        self.episodes = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.episodes += 1
        return np.array([0.0, 0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        reward = float(self.episodes % 13) + float(action[0])
        return np.array([self.t / EPISODE_LENGTH, 0.0], np.float32), reward, False, False, {}


gym.register("TestVaryingReturns-v0", entry_point=VaryingReturnsEnv, max_episode_steps=EPISODE_LENGTH)

TAGS = {"rollout/ep_rew_mean", "rollout/ep_len_mean", "train/actor_loss", "train/critic_loss",
        "train/learning_rate", "train/critic_learning_rate", "train/q_mean", "train/noise_sigma",
        "train/buffer_fill", "time/fps", "eval/mean_reward", "eval/mean_ep_length"}


def config(**changes) -> DDPGConfig:
    base = DDPGConfig(env_id="TestVaryingReturns-v0", total_steps=1000, learning_starts=100, batch_size=32,
                      hidden_sizes=(16, 16), eval_every=500, eval_episodes=2, buffer_size=10_000,
                      threads=1, device="cpu")
    return base.replace(**changes)


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    reader = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})  # 0: keep every value
    reader.Reload()
    return {tag: [(event.step, event.value) for event in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]}


def window_means(rows: list[dict], key: str) -> list[tuple[int, float]]:
    values = [row[key] for row in rows]
    return [(row["step"], statistics.fmean(values[max(0, i + 1 - EPISODE_WINDOW):i + 1]))
            for i, row in enumerate(rows)]


def assert_series(actual: list[tuple[int, float]], expected: list[tuple[int, float]]) -> None:
    assert [step for step, _ in actual] == [step for step, _ in expected]
    # TensorBoard keeps scalars as float32.
    assert [value for _, value in actual] == pytest.approx([value for _, value in expected], rel=1e-6, abs=1e-6)


def assert_matches_metrics(run_dir: Path, seen: dict[str, list[tuple[int, float]]], lr: float) -> None:
    episodes = read_rows(run_dir, ("episode",))
    updates = read_rows(run_dir, ("update",))
    evals = read_rows(run_dir, ("eval",))
    assert len(episodes) > EPISODE_WINDOW  # the window has slid, so the mean is not the running mean
    assert_series(seen["rollout/ep_rew_mean"], window_means(episodes, "episode_return"))
    assert_series(seen["rollout/ep_len_mean"], window_means(episodes, "length"))
    for tag, key in (("train/actor_loss", "actor_loss"), ("train/critic_loss", "critic_loss"),
                     ("train/q_mean", "mean_q")):
        assert_series(seen[tag], [(row["step"], row[key]) for row in updates])
    assert_series(seen["train/learning_rate"], [(row["step"], lr) for row in updates])
    assert_series(seen["eval/mean_reward"], [(row["step"], row["mean"]) for row in evals])
    assert all(row["lengths"] == [EPISODE_LENGTH] * len(row["returns"]) for row in evals)  # eval rows keep them
    assert_series(seen["eval/mean_ep_length"], [(row["step"], statistics.fmean(row["lengths"])) for row in evals])
    for tag, series in seen.items():
        steps = [step for step, _ in series]
        assert steps == sorted(set(steps)), f"{tag}: duplicated or out-of-order steps"


def no_writer_thread_left() -> bool:
    return not any(isinstance(thread, _EventLoggerThread) for thread in threading.enumerate())


def test_a_run_writes_sb3_tags_whose_steps_and_values_are_metrics_jsonl(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    outcome = Trainer(config(), run_dir=run_dir).run()
    assert outcome.step == 1000

    seen = scalars(run_dir)
    assert set(seen) == TAGS
    assert_matches_metrics(run_dir, seen, lr=1e-3)
    assert_series(seen["train/critic_learning_rate"], [(step, 1e-3) for step, _ in seen["train/actor_loss"]])
    # Progress every STATS_EVERY steps; the buffer holds every step so far, the noise is the configured sigma.
    assert [step for step, _ in seen["train/buffer_fill"]] == [100, 200, 400, 600, 800, 1000]
    assert_series(seen["train/buffer_fill"], [(step, step / 10_000) for step, _ in seen["train/buffer_fill"]])
    assert [value for _, value in seen["train/noise_sigma"]] == pytest.approx([0.1] * 6)
    assert all(value > 0 for _, value in seen["time/fps"])
    assert no_writer_thread_left()


def test_the_learning_rate_is_the_optimizers_so_a_schedule_shows(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    Trainer(config(lr_schedule="linear", actor_lr=1e-3, critic_lr=2e-3, total_steps=600, eval_every=0),
            run_dir=run_dir).run()
    seen = scalars(run_dir)
    decay = LinearDecay.over(600)
    assert_series(seen["train/learning_rate"], [(step, 1e-3 * decay(step)) for step, _ in seen["train/actor_loss"]])
    assert_series(seen["train/critic_learning_rate"],
                  [(step, 2e-3 * decay(step)) for step, _ in seen["train/actor_loss"]])


def test_tensorboard_false_writes_no_event_file(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    Trainer(config(tensorboard=False, total_steps=300, eval_every=0), run_dir=run_dir).run()
    assert (run_dir / "metrics.jsonl").is_file()
    assert list(run_dir.rglob("*tfevents*")) == []


def test_a_resumed_run_supersedes_what_lay_past_its_checkpoint(tmp_path: Path) -> None:
    """Run 1 saves at step 400 and goes on to 700 before it dies without saving; the resume from step 400 writes
    401..1000 again. TensorBoard must show each step once, with the resumed run's values, and the 100-episode
    window must carry on from the episodes before the checkpoint. The resumed env counts its episodes from
    one again, so its returns differ from run 1's at the same steps: stale values would show."""
    run_dir = tmp_path / "run"
    first = Trainer(config(save_every=400), run_dir=run_dir)

    saves: list[Saved] = []

    def crash_at_700(event: object) -> None:
        if isinstance(event, Saved):
            saves.append(event)
        if isinstance(event, EpisodeEnd) and event.step >= 700:
            first.controls.stop(save=False)

    first.sink = crash_at_700
    first.run()
    assert no_writer_thread_left()  # a stop closes the writer too
    assert [save.step for save in saves if save.reason != "best"] == [400]
    stale = scalars(run_dir)
    assert max(step for step, _ in stale["rollout/ep_rew_mean"]) >= 700

    resumed = Trainer(None, run_dir=run_dir, resume_from=run_dir / "checkpoints" / "latest.pt")
    assert resumed.run().step == 1000

    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 2
    seen = scalars(run_dir)
    assert set(seen) == TAGS
    assert_matches_metrics(run_dir, seen, lr=1e-3)
    stale_after = {step: value for step, value in stale["rollout/ep_rew_mean"] if step > 400}
    now_after = {step: value for step, value in seen["rollout/ep_rew_mean"] if step > 400}
    assert any(now_after[step] != pytest.approx(value) for step, value in stale_after.items())
    assert no_writer_thread_left()


def test_the_writer_is_closed_when_training_fails(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    trainer = Trainer(config(total_steps=400, eval_every=0), run_dir=run_dir)
    update = trainer.agent.update

    def fail_at_250(batch):
        if trainer.step >= 250:
            raise RuntimeError("boom")
        return update(batch)

    trainer.agent.update = fail_at_250
    assert trainer.run().error
    assert no_writer_thread_left()
    seen = scalars(run_dir)
    # Everything queued before the failure reached the file: the episodes up to step 250.
    assert seen["rollout/ep_rew_mean"][-1][0] == 250


def test_each_population_member_writes_its_own_run_like_a_single_run(tmp_path: Path) -> None:
    from agents.population import PopulationTrainer

    folders = [tmp_path / "seed-0", tmp_path / "seed-1"]
    PopulationTrainer(config(total_steps=700), [0, 1], run_dirs=folders).run()
    assert no_writer_thread_left()
    for folder in folders:
        seen = scalars(folder)
        assert set(seen) == TAGS
        assert_matches_metrics(folder, seen, lr=1e-3)


def hparams_sessions(run_dir: Path) -> list[dict]:
    from tensorboard.plugins.hparams import plugin_data_pb2

    reader = EventAccumulator(str(run_dir))
    reader.Reload()
    sessions = []
    for content in reader.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.WhichOneof("data") == "session_start_info":
            sessions.append({name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
                             for name, value in data.session_start_info.hparams.items()})
    return sessions


def test_a_sweeps_summary_gives_each_trial_folder_its_hparams_session(tmp_path: Path) -> None:
    from ddpg_tui.sweeps.board import TrialRow
    from ddpg_tui.sweeps.space import Variant
    from ddpg_tui.sweeps.summary import write_summary

    variants = [Variant((("actor_lr", 0.001), ("hidden_sizes", (16, 16)))), Variant((("actor_lr", 0.0003),
                                                                                      ("hidden_sizes", (8,))))]
    finals = {(0, 0): -300.0, (0, 1): -100.0, (0, 2): -200.0, (1, 0): -500.0, (1, 1): -700.0}
    rows = []
    for (v, seed), final in finals.items():
        name = f"v{v}-seed{seed}"
        Trainer(config(total_steps=110, eval_every=0, seed=seed), run_dir=tmp_path / name).run()
        rows.append(TrialRow(name, variants[v].label, seed, state="finished", step=110, total_steps=110,
                             evals=((110, final, 1.0),), best_eval=final, best_step=110))
    rows.append(TrialRow("never-ran", variants[1].label, 2, state="pending"))  # no folder: skipped

    for _ in range(2):  # a resumed sweep writes its summary again: still one session per trial
        write_summary(tmp_path, "t", [], rows, variants, ["actor_lr", "hidden_sizes"], None)

    for (v, seed), final in finals.items():
        folder = tmp_path / f"v{v}-seed{seed}"
        assert hparams_sessions(folder) == [{"config": variants[v].label, "seed": float(seed),
                                             "actor_lr": variants[v].as_dict()["actor_lr"],
                                             "hidden_sizes": "16x16" if v == 0 else "8"}]
        seen = scalars(folder)
        assert seen["hparams/final_eval"] == [(110, final)]
        assert seen["hparams/config_median_final_eval"] == [(110, -200.0 if v == 0 else -600.0)]
        assert "rollout/ep_rew_mean" in seen  # the trainer's own curves beside it


def test_a_trial_without_event_files_gets_no_hparams_session(tmp_path: Path) -> None:
    from ddpg_tui.sweeps.summary import TrialSummary
    from ddpg_tui.sweeps.tensorboard import write_hparams

    Trainer(config(total_steps=110, eval_every=0, tensorboard=False), run_dir=tmp_path / "t0").run()
    trial = TrialSummary("t0", "base", {}, 0, "finished", 110, 110, -1.0, 0.0, -1.0, 110, None, 1.0, 1.0)
    assert write_hparams(tmp_path, [trial]) == []
    assert list((tmp_path / "t0").glob("*tfevents*")) == []


def test_set_tensorboard_false_is_how_a_user_turns_it_off() -> None:
    assert DDPGConfig().tensorboard is True
    assert DDPGConfig().with_overrides(["tensorboard=false"]).tensorboard is False
    assert "tensorboard = false" in DDPGConfig(tensorboard=False).to_toml()  # config.toml says so


def test_without_tensorboardx_a_run_trains_on_and_says_why_there_are_no_event_files(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    from agents.events import Notice

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # `import tensorboardX` now raises ImportError
    notices: list[str] = []
    run_dir = tmp_path / "run"
    outcome = Trainer(config(total_steps=300, eval_every=0), lambda event: notices.append(event.message)
                      if isinstance(event, Notice) else None, run_dir=run_dir).run()
    assert outcome.step == 300 and not outcome.error
    assert any("tensorboardX is not installed" in message for message in notices)
    assert read_rows(run_dir, ("episode",)) and list(run_dir.glob("*tfevents*")) == []

    from agents.population import PopulationTrainer

    member_notices: list[str] = []
    folders = [tmp_path / "seed-0", tmp_path / "seed-1"]
    PopulationTrainer(config(total_steps=300, eval_every=0), [0, 1], run_dirs=folders,
                      sink=lambda k, event: member_notices.append(event.message)
                      if isinstance(event, Notice) else None).run()
    assert sum("tensorboardX is not installed" in message for message in member_notices) == 2
    assert all(read_rows(folder, ("episode",)) and not list(folder.glob("*tfevents*")) for folder in folders)
