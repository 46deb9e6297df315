"""Recording: evaluations that keep their first episode, replays that redraw it, and GIF/MP4 files."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

from agents.config import DDPGConfig
from agents.envs import make_env
from agents.evaluation import EpisodeTracer, evaluate, load_checkpoint_policy
from agents.events import EvalRecording, EvalResult
from agents.trainer import Trainer
from ddpg_tui.cli.commands import evaluate as eval_command
from ddpg_tui.media.animation import AnimationWriter, check_record_path, gif_durations
from ddpg_tui.media.render import RecordingError, first_frame, frame_stride, make_render_env
from ddpg_tui.media.replay import ReplayRenderer, render_replay, replay_plan

ROOT = Path(__file__).resolve().parents[1]


class NoPicturesEnv(gym.Env):
    """A continuous-control env that has no rgb_array mode."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}
    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
    action_space = gym.spaces.Box(-2.0, 2.0, shape=(1,), dtype=np.float32)

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), 0.0, False, False, {}


class DriftingEnv(NoPicturesEnv):
    """Rewards depend on a generator that reset(seed) does not reach: a replay cannot repeat them."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 30}
    _shared = np.random.default_rng()

    def step(self, action):
        return np.zeros(3, np.float32), float(self._shared.normal()), False, False, {}

    def render(self):
        return np.zeros((4, 4, 3), np.uint8)


gym.register("TestNoPictures-v0", entry_point=NoPicturesEnv, max_episode_steps=10)
gym.register("TestDrifting-v0", entry_point=DriftingEnv, max_episode_steps=10)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A tiny trained Pendulum run (its latest.pt), made once for the module."""
    run = tmp_path_factory.mktemp("record") / "run"
    config = DDPGConfig(total_steps=200, learning_starts=100, batch_size=32, hidden_sizes=(16, 16), eval_every=0,
                        eval_episodes=1, threads=1)
    Trainer(config, None, run).run()
    return run


def random_recording(env_id: str, seed: int = 10_000) -> EvalRecording:
    env = make_env(env_id)
    rng = np.random.default_rng(0)
    tracer = EpisodeTracer()
    evaluate(lambda obs: rng.uniform(-1, 1, env.action_space.shape), env, 2, seed, step_sink=tracer)
    env.close()
    return tracer.recording(1000, env_id, seed, float(env.metadata.get("render_fps") or 0))


# The trainer's hook -------------------------------------------------------------------


def test_an_evaluation_records_its_first_episode_only_while_asked(tiny_config) -> None:
    config = tiny_config.replace(total_steps=300, eval_every=100, eval_episodes=2)
    events: list[object] = []
    trainer = Trainer(config, events.append)

    def ask_after_first_eval(event: object) -> None:
        events.append(event)
        if isinstance(event, EvalResult):
            trainer.record_evaluations.set()

    trainer.sink = ask_after_first_eval
    trainer.run()
    evals = [e for e in events if isinstance(e, EvalResult)]
    recordings = [e for e in events if isinstance(e, EvalRecording)]
    assert len(evals) == 3 and len(recordings) == 2  # at 100 (nobody asked yet), 200 and 300
    assert [r.step for r in recordings] == [e.step for e in evals[1:]]
    first = recordings[0]
    assert first.env_id == "Pendulum-v1" and len(first.actions) == len(first.rewards) == 200  # one episode
    assert first.episode_return == pytest.approx(evals[1].returns[0])
    assert first.render_fps == 30
    assert all(-2.0 <= a[0] <= 2.0 for a in first.actions)  # clipped, as given to env.step
    index = events.index(first)
    assert events[index - 1] is evals[1]  # right after its evaluation's result


def test_a_headless_run_makes_no_env_that_renders(tiny_config) -> None:
    trainer = Trainer(tiny_config.replace(total_steps=150, eval_every=150), None)
    trainer.run()
    assert trainer.eval_env.render_mode is None and trainer.env.render_mode is None


# Replays -----------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "MountainCarContinuous-v0", "LunarLanderContinuous-v3"])
def test_a_replay_earns_what_the_evaluation_earned_step_by_step(env_id: str) -> None:
    if env_id.startswith("Lunar") and importlib.util.find_spec("Box2D") is None:
        pytest.skip("box2d is not installed")
    recording = random_recording(env_id)
    plan = replay_plan(recording)
    chunk = render_replay(recording, 0, plan.frames, 64, 64, plan)
    assert chunk.complete and chunk.diverged_at is None
    assert len(chunk.frames) == plan.frames
    assert chunk.steps[0] == 0 and chunk.steps[-1] == len(recording.rewards)
    assert chunk.rewards_so_far[-1] == pytest.approx(recording.episode_return, rel=1e-9)
    assert max(chunk.frames[0].shape[:2]) == 64 and chunk.frames[0].dtype == np.uint8


def test_chunks_of_a_replay_join_into_the_whole() -> None:
    recording = random_recording("Pendulum-v1")
    plan = replay_plan(recording)
    whole = render_replay(recording, 0, plan.frames, 32, 32, plan)
    parts = [render_replay(recording, first, 30, 32, 32, plan) for first in range(0, plan.frames, 30)]
    assert [s for p in parts for s in p.steps] == list(whole.steps)
    assert all(np.array_equal(a, b) for a, b in zip([f for p in parts for f in p.frames], whole.frames, strict=True))
    assert [p.complete for p in parts] == [False] * (len(parts) - 1) + [True]


def test_a_replay_that_leaves_the_evaluations_path_stops_and_says_where() -> None:
    recording = random_recording("TestDrifting-v0")
    chunk = render_replay(recording, 0, 100, 8, 8)
    assert chunk.complete and chunk.diverged_at == 1 and chunk.steps == (0,)


def test_the_plan_plays_in_real_time_at_most_20_fps() -> None:
    recording = random_recording("Pendulum-v1")  # 30 fps, 200 steps
    plan = replay_plan(recording)
    assert (plan.stride, plan.fps, plan.frames) == (2, 15.0, 101)
    assert frame_stride(50, 20) == (3, 50 / 3) and frame_stride(20, 20) == (1, 20.0)


def test_the_helper_process_draws_and_reports_failures_as_one_line() -> None:
    renderer = ReplayRenderer()
    try:
        chunk = renderer.render(random_recording("Pendulum-v1"), 0, 3, 40, 40)
        assert len(chunk.frames) == 3 and chunk.frames[0].shape == (40, 40, 3)
        assert len({frame.tobytes() for frame in chunk.frames}) > 1
        bad = EvalRecording(1, "TestNoPictures-v0", 0, ((0.0,),), (0.0,))
        with pytest.raises(RecordingError) as error:
            renderer.render(bad, 0, 3, 40, 40)
        # The helper is another process: the test env is not registered there.
        assert "\n" not in str(error.value) and "TestNoPictures-v0" in str(error.value)
    finally:
        renderer.close()



def test_a_closed_renderer_refuses_work_instead_of_starting_a_helper_nobody_stops() -> None:
    # The panel closes its renderer on unmount; a replay worker still running must not start a new one.
    renderer = ReplayRenderer()
    renderer.render(random_recording("Pendulum-v1"), 0, 1, 20, 20)
    renderer.close()
    with pytest.raises(RecordingError, match="closed"):
        renderer.render(random_recording("Pendulum-v1"), 0, 1, 20, 20)
    assert not renderer.running

# Envs that cannot draw -------------------------------------------------------------------


def test_an_env_without_rgb_array_is_refused_in_one_line() -> None:
    with pytest.raises(RecordingError, match="TestNoPictures-v0 cannot render frames: its render modes are ansi"):
        make_render_env("TestNoPictures-v0")


def test_a_renderer_that_fails_is_one_line_with_what_to_do(monkeypatch) -> None:
    class Broken:
        def reset(self, seed=None):
            return None, {}

        def render(self):
            raise AttributeError("'OffScreenViewer' object has no attribute 'opengl_context'")

    monkeypatch.setenv("MUJOCO_GL", "glfw")
    with pytest.raises(RecordingError) as error:
        first_frame(Broken(), "HalfCheetah-v5")  # type: ignore[arg-type]
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("HalfCheetah-v5 cannot render here (MuJoCo with MUJOCO_GL=glfw")
    assert "MUJOCO_GL=egl" in message and "osmesa" in message


def test_every_preset_env_renders_headless() -> None:
    # MuJoCo renders through EGL here, which takes seconds for its first frame: one env stands for both.
    ids = ["Pendulum-v1", "MountainCarContinuous-v0"]
    ids += ["LunarLanderContinuous-v3", "BipedalWalker-v3"] if importlib.util.find_spec("Box2D") else []
    ids += ["HalfCheetah-v5"] if importlib.util.find_spec("mujoco") else []
    code = ("import sys; from ddpg_tui.media.render import make_render_env, first_frame\n"
            "for env_id in sys.argv[1:]:\n"
            "    env = make_render_env(env_id); f = first_frame(env, env_id); env.close()\n"
            "    print(env_id, f.shape[1], f.shape[0], int(f.std() > 0))\n")
    # A process of its own, without DISPLAY, as on a server: MUJOCO_GL is chosen by make_render_env.
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL")}
    result = subprocess.run([sys.executable, "-c", code, *ids], capture_output=True, text=True, timeout=240, cwd=ROOT,
                            env={**env, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    shown = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert set(shown) == set(ids)
    assert all(values[2] == "1" for values in shown.values())  # a picture, not a blank


# Files -----------------------------------------------------------------------------------


def test_record_paths_are_checked_before_any_work(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(RecordingError, match=r"unknown format '\.avi'; expected a \.gif or \.mp4 file"):
        check_record_path(tmp_path / "out.avi")
    with pytest.raises(RecordingError, match="unknown format none"):
        check_record_path(tmp_path / "out")
    (tmp_path / "folder.gif").mkdir()
    with pytest.raises(RecordingError, match="is a folder"):
        check_record_path(tmp_path / "folder.gif")
    with pytest.raises(RecordingError, match=r"cannot write .*nowhere/out\.gif \(No such file or directory\)"):
        AnimationWriter(tmp_path / "nowhere" / "out.gif", 10)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "imageio_ffmpeg" else real_find_spec(name, *a))
    with pytest.raises(RecordingError, match=r"needs an MP4 encoder: pip install 'ddpg-tui\[video\]'"):
        check_record_path(tmp_path / "out.mp4")


def test_gif_delays_average_to_the_frame_rate() -> None:
    durations = gif_durations(300, 30)
    assert set(durations) == {30, 40} and sum(durations) == 10_000  # 300 frames at 30 fps: 10 s
    assert gif_durations(4, 20) == [50, 50, 50, 50]


def test_identical_neighbouring_frames_become_one_longer_gif_frame(tmp_path: Path) -> None:
    writer = AnimationWriter(tmp_path / "a.gif", 10)
    red, blue = np.zeros((4, 6, 3), np.uint8), np.zeros((4, 6, 3), np.uint8)
    red[..., 0], blue[..., 2] = 255, 255
    for frame in (red, red, blue):
        writer.add(frame)
    assert writer.close() == 2
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 2 and gif.size == (6, 4)
        assert gif.info["duration"] == 200  # the two reds, 100 ms each
    assert not list(tmp_path.glob(".a.gif.*"))  # the temporary file was renamed


def run_eval(args: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    eval_command.add_arguments(parser)
    code = eval_command.run(parser.parse_args(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_record_writes_a_gif_that_decodes_to_the_expected_frames(finished_run: Path, tmp_path: Path,
                                                                      capsys) -> None:
    out = tmp_path / "pendulum.gif"
    code, stdout, _ = run_eval([str(finished_run), "--record", str(out), "--episodes", "2", "--fps", "10"], capsys)
    assert code == 0
    # Pendulum runs at 30 fps: at 10 fps every 3rd step is kept; 200 steps give frames 0, 3, ..., 198 per episode.
    expected = 2 * (200 // 3 + 1)
    assert f"wrote {out}: {expected} frames, 500x500, 10 fps, every 3rd step" in stdout
    assert "over 2 episodes (noise off)" in stdout
    with Image.open(out) as gif:
        assert gif.n_frames == expected and gif.size == (500, 500)
        gif.seek(expected // 2)
        pixels = np.asarray(gif.convert("RGB"))
        assert (pixels[..., 0] > 150).any() and (pixels[..., 1] < 100).any()  # the red rod is there


@pytest.mark.skipif(importlib.util.find_spec("imageio_ffmpeg") is None, reason="the video extra is not installed")
def test_eval_record_writes_an_mp4_when_an_encoder_is_installed(finished_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "pendulum.mp4"
    code, stdout, _ = run_eval([str(finished_run), "--record", str(out), "--fps", "15", "--json"], capsys)
    assert code == 0 and out.stat().st_size > 1000
    assert '"frames": 101' in stdout and '"fps": 15.0' in stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--record", "out.webm"], "--record out.webm: unknown format '.webm'; expected a .gif or .mp4 file"),
    (["--record", "no/such/folder/out.gif"], "--record: cannot write no/such/folder/out.gif (No such file or"),
    (["--env", "TestNoPictures-v0", "--record", "out.gif"],
     "TestNoPictures-v0 cannot render frames: its render modes are ansi, and rgb_array is needed"),
])
def test_eval_record_bad_input_is_one_line_and_exit_2(finished_run: Path, tmp_path: Path, monkeypatch, capsys,
                                                      args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = run_eval([str(finished_run), *args], capsys)
    lines = stderr.strip().splitlines()
    assert code == 2 and stdout == ""
    assert len(lines) == 1 and lines[0].startswith("ddpg-tui: error: ") and message in lines[0]
    assert not list(tmp_path.glob("*.gif")) and not list(tmp_path.glob(".*.gif.*"))


def test_a_checkpoint_policy_refuses_an_env_that_cannot_draw(finished_run: Path) -> None:
    with pytest.raises(RecordingError, match="TestNoPictures-v0 cannot render frames"):
        load_checkpoint_policy(finished_run, "TestNoPictures-v0", make_render_env)
