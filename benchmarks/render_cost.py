"""What showing the agent costs (#15), each measurement side by side in one run; read the ratios.

    python benchmarks/render_cost.py            # everything (about 10 minutes on 2 loaded cores)
    python benchmarks/render_cost.py --quick    # one round, fewer steps
    python benchmarks/render_cost.py --only eval,draw,play,dashboard

(a) eval: an evaluation as the presets run it (10 episodes, noise off, the preset's network,
    untrained) with and without recording its first episode for the Agent panel, rounds
    alternating; and, for scale, what recording frames inside the evaluation would cost
    (the design this one replaced). Target: recording adds at most 15%.
(b) draw: turning one frame into a 60x20-cell half-block picture (fit with numpy, cells,
    Strips), for a Pendulum frame at its 500x500, a replay frame (160 px, what the panel
    gets), and random noise (every cell its own colour) with the Style cache cold and warm.
    Target: at most 5 ms.
(c) play: the Agent panel playing a real Pendulum replay in a headless app for a few
    seconds: frames a second, and draws against distinct pictures shown (no picture twice).
(d) dashboard: learning-phase steps/s at equal work (Pendulum, 256x256, batch 256, one
    update a step, one torch thread, an evaluation every 500 steps), each in its own
    process, rounds alternating: headless; the dashboard; the dashboard with the Agent panel
    open and playing. Target: panel open >= 0.9 of headless. When the dashboard does not
    have the panel yet (the `w` key), a stand-in applies the integration patch in the
    worker: the trainer records while the panel shows, the screen hosts it in the plots'
    place and feeds it the latest recording, as ddpg_tui/ui/widgets/agent_panel.py describes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LEARNING_STARTS = 500
PRESETS = {"Pendulum-v1": (64, 64), "MountainCarContinuous-v0": (256, 256), "LunarLanderContinuous-v3": (256, 256)}


# (a) evaluation ---------------------------------------------------------------------------


def eval_cost(rounds: int) -> None:
    import numpy as np
    import torch

    from agents.envs import make_env
    from agents.evaluation import EpisodeTracer, evaluate
    from agents.networks import Actor
    from ddpg_tui.media.render import frame_stride, make_render_env

    torch.set_num_threads(1)
    print("\n(a) an evaluation (10 episodes, noise off, untrained preset network), seconds, median of "
          f"{rounds} alternating rounds")
    print(f"  {'env':<26} {'plain':>7} {'+record':>8} {'ratio':>6}   {'frames in the eval':>18} {'ratio':>6}")
    for env_id, hidden in PRESETS.items():
        env = make_env(env_id)
        render_env = make_render_env(env_id)
        spec_low, spec_high = env.action_space.low, env.action_space.high
        actor = Actor(env.observation_space.shape[0], env.action_space.shape[0], hidden, spec_low, spec_high)

        @torch.inference_mode()
        def policy(obs: np.ndarray, actor: Actor = actor) -> np.ndarray:
            return actor(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))[0].numpy()

        stride, _ = frame_stride(float(render_env.metadata.get("render_fps") or 0.0), 20.0)
        evaluate(policy, env, 2, seed=10_000)  # warm-up: first calls into torch and the env are slower
        evaluate(policy, render_env, 1, seed=10_000, frame_sink=lambda *frame: None)
        times: dict[str, list[float]] = {"plain": [], "record": [], "frames": []}
        for _ in range(rounds):
            for name in times:
                start = time.perf_counter()
                if name == "plain":
                    evaluate(policy, env, 10, seed=10_000)
                elif name == "record":
                    evaluate(policy, env, 10, seed=10_000, step_sink=EpisodeTracer())
                else:  # the first episode drawn while the evaluation runs, every stride-th step
                    frames: list[np.ndarray] = []
                    evaluate(policy, render_env, 10, seed=10_000,
                             frame_sink=lambda episode, step, frame, kept=frames: kept.append(frame)
                             if episode == 0 else None, frame_every=stride)
                times[name].append(time.perf_counter() - start)
        plain, record, drawn = (statistics.median(times[k]) for k in ("plain", "record", "frames"))
        # The frame sink draws every episode's frames; only the first episode's count for the panel.
        drawn_first = plain + (drawn - plain) / 10
        print(f"  {env_id:<26} {plain:7.3f} {record:8.3f} {record / plain:6.3f}   {drawn_first:18.3f} "
              f"{drawn_first / plain:6.2f}")
        env.close()
        render_env.close()


# (b) drawing one frame ------------------------------------------------------------------------


def draw_cost(repeats: int = 50) -> None:
    import numpy as np
    from rich.style import Style

    from ddpg_tui.media.render import fit, make_render_env
    from ddpg_tui.ui.widgets.frames import HalfBlockPainter

    env = make_render_env("Pendulum-v1")
    env.reset(seed=0)
    for _ in range(20):
        env.step(env.action_space.sample())
    pendulum = env.render()
    env.close()
    replay = fit(pendulum, 160, 160)
    noise = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    blank = Style()

    def timed(frame: np.ndarray, painter: HalfBlockPainter | None = None) -> float:
        samples = []
        for _ in range(repeats):
            use = painter or HalfBlockPainter()
            start = time.perf_counter()
            use.strips(frame, 60, 20, blank)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1000

    warm = HalfBlockPainter()
    warm.strips(noise, 60, 20, blank)
    print(f"\n(b) one frame to 60x20 half-block cells (fit + cells + Strips), ms, median of {repeats}")
    print(f"  Pendulum 500x500, Style cache cold   {timed(pendulum):6.2f}")
    shared = HalfBlockPainter()
    shared.strips(pendulum, 60, 20, blank)
    print(f"  Pendulum 500x500, Style cache warm   {timed(pendulum, shared):6.2f}  (the panel's case)")
    print(f"  replay frame 160x160, cache warm     {timed(replay, shared):6.2f}")
    print(f"  noise 60x40, every cell new (cold)   {timed(noise):6.2f}  (worst case, never seen in an env)")
    print(f"  noise 60x40, cache warm              {timed(noise, warm):6.2f}")


# (c) playing ----------------------------------------------------------------------------------


def play_cost(seconds: float = 6.0) -> None:
    import asyncio

    import numpy as np
    from textual.app import App, ComposeResult

    from agents.envs import make_env
    from agents.evaluation import EpisodeTracer, evaluate
    from ddpg_tui.ui.widgets.agent_panel import AgentPanel
    from ddpg_tui.ui.widgets.frames import FrameView

    env = make_env("Pendulum-v1")
    rng = np.random.default_rng(0)
    tracer = EpisodeTracer()
    evaluate(lambda obs: rng.uniform(-2, 2, 1), env, 1, seed=10_000, step_sink=tracer)
    recording = tracer.recording(1000, "Pendulum-v1", 10_000, 30.0)

    class Host(App):
        def compose(self) -> ComposeResult:
            panel = AgentPanel()
            panel.display = True
            yield panel

    async def run() -> dict[str, float]:
        app = Host()
        async with app.run_test(size=(80, 30)) as pilot:
            panel = app.query_one(AgentPanel)
            panel.show(recording, evaluations=1)
            while panel.loop is None or not panel.loop.complete:
                await pilot.pause(0.05)
            view = app.query_one(FrameView)
            shown: list[int] = []
            start_draws, start = view.draws, time.perf_counter()
            while time.perf_counter() - start < seconds:
                shown.append(panel.loop.index)
                await pilot.pause(0.01)
            elapsed = time.perf_counter() - start
            changes = sum(1 for a, b in itertools.pairwise(shown) if a != b)
            return {"fps": changes / elapsed, "draws": view.draws - start_draws, "changes": changes,
                    "plan_fps": panel.loop.plan.fps}

    result = asyncio.run(run())
    print(f"\n(c) the Agent panel playing a Pendulum replay for {seconds:g} s (80x30, half blocks)")
    print(f"  {result['fps']:.1f} frames a second (the plan: {result['plan_fps']:.0f}, at most 20); "
          f"{result['draws']} draws for {result['changes']} frame changes")


# (d) the dashboard ------------------------------------------------------------------------------


def worker_train(mode: str, steps: int) -> dict[str, Any]:
    """mode: headless, dashboard, panel. Returns the learning-phase steps/s from StepStats."""
    from agents.config import DDPGConfig
    from agents.events import StepStats

    config = DDPGConfig(env_id="Pendulum-v1", total_steps=LEARNING_STARTS + steps, learning_starts=LEARNING_STARTS,
                        batch_size=256, hidden_sizes=(256, 256), buffer_size=200_000, eval_every=500,
                        eval_episodes=10, threads=1, device="cpu")
    marks: dict[int, float] = {}
    recordings = 0

    def record(event: object) -> None:
        nonlocal recordings
        if isinstance(event, StepStats):
            marks[event.step] = event.elapsed
        recordings += type(event).__name__ == "EvalRecording"

    if mode == "headless":
        from agents.trainer import Trainer

        Trainer(config, record, front_end="app").run()  # one thread, as the app gives training
    else:
        import asyncio

        from ddpg_tui.request import TrainingRequest
        from ddpg_tui.ui.app import DDPGApp
        from ddpg_tui.ui.screens import dashboard
        from ddpg_tui.ui.session import TrainingSession

        integrated = hasattr(dashboard.DashboardScreen, "action_toggle_agent")
        if mode == "panel" and not integrated:
            install_stand_in()

        class RecordingSession(TrainingSession):
            def sink(self, event: Any) -> None:
                record(event)
                super().sink(event)

        session = RecordingSession(TrainingRequest(config, Path(f"/tmp/ddpg-render-cost-{os.getpid()}")))

        async def drive() -> None:
            app = DDPGApp(session=session)
            async with app.run_test(size=(120, 40)) as pilot:
                if mode == "panel":
                    await pilot.press("w")
                while session.snapshot().state.value not in ("finished", "error"):
                    await pilot.pause(0.1)

        asyncio.run(drive())
    start, end = marks[LEARNING_STARTS], marks[max(marks)]
    return {"steps_per_second": (max(marks) - LEARNING_STARTS) / (end - start), "recordings": recordings}


def install_stand_in() -> None:
    """The integration patch, applied in this worker only: a trainer that records while the
    panel shows, a session that keeps the latest recording, and a dashboard that hosts the
    panel in the plots' place behind `w`."""
    import threading

    from textual.binding import Binding

    import agents.trainer
    import ddpg_tui.ui.screens.dashboard as dashboard
    from agents.events import EvalRecording
    from ddpg_tui.ui.widgets.agent_panel import AgentPanel

    watching = threading.Event()
    latest: list[EvalRecording] = []
    base_trainer = agents.trainer.Trainer

    class RecordingTrainer(base_trainer):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, record_evaluations=watching, **kwargs)
            session_sink = self.sink

            def sink(event: Any) -> None:  # the session's fold, as the patch adds it to the snapshot
                if isinstance(event, EvalRecording):
                    latest.append(event)
                session_sink(event)

            self.sink = sink

    class Dashboard(dashboard.DashboardScreen):
        BINDINGS = [*dashboard.DashboardScreen.BINDINGS, Binding("w", "toggle_agent", "Agent")]  # noqa: RUF012

        def on_mount(self) -> None:
            self.query_one("#plots").mount(AgentPanel(id="agent"))
            super().on_mount()

        def refresh_from_session(self) -> None:
            super().refresh_from_session()
            panels = self.query(AgentPanel)
            if panels:
                snapshot = self.last_snapshot
                panels.first().show(latest[-1] if latest else None, evaluations=len(snapshot.evals),
                                    active=snapshot.active, run_dir=snapshot.run_dir)

        def action_toggle_agent(self) -> None:
            panel = self.query_one(AgentPanel)
            panel.display = not panel.display
            self.query_one("#reward-plot").display = self.query_one("#loss-plots").display = not panel.display
            (watching.set if panel.display else watching.clear)()

    agents.trainer.Trainer = RecordingTrainer  # the session imports it in its worker, after this
    dashboard.DashboardScreen = Dashboard


def spawn(name: str, **kwargs: Any) -> dict[str, Any]:
    result = subprocess.run([sys.executable, __file__, "--worker", name, "--args", json.dumps(kwargs)],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def dashboard_cost(rounds: int, steps: int) -> None:
    from ddpg_tui.ui.screens import dashboard

    integrated = hasattr(dashboard.DashboardScreen, "action_toggle_agent")
    print(f"\n(d) learning-phase steps/s, Pendulum 256x256, batch 256, 1 torch thread, an evaluation of 10 episodes "
          f"every 500 steps, {steps:,} steps; rounds alternate ({'the dashboard' if integrated else 'a stand-in'}"
          " hosts the panel)")
    runs: dict[str, list[dict[str, Any]]] = {"headless": [], "dashboard": [], "panel": []}
    for r in range(rounds):
        for mode in runs:
            runs[mode].append(spawn("train", mode=mode, steps=steps))
        print(f"  round {r + 1}: " + ", ".join(f"{m} {v[-1]['steps_per_second']:.0f}" for m, v in runs.items())
              + f"  (recordings with the panel open: {runs['panel'][-1]['recordings']})")
    sps = {m: statistics.median(v["steps_per_second"] for v in values) for m, values in runs.items()}
    print("  median: " + ", ".join(f"{m} {v:.0f}" for m, v in sps.items()))
    print(f"  ratio dashboard/headless {sps['dashboard'] / sps['headless']:.2f}   "
          f"panel open/headless {sps['panel'] / sps['headless']:.2f}   "
          f"panel open/dashboard {sps['panel'] / sps['dashboard']:.2f}")


WORKERS = {"train": worker_train}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--args", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="one round, fewer steps")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000, help="learning-phase steps per dashboard measurement")
    parser.add_argument("--only", default="eval,draw,play,dashboard", help="comma-separated parts to run")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](**json.loads(args.args))))
        return 0
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    rounds, steps = (1, 1000) if args.quick else (args.rounds, args.steps)
    parts = set(args.only.split(","))
    print(f"render cost: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    if "eval" in parts:
        eval_cost(max(rounds, 5))
    if "draw" in parts:
        draw_cost()
    if "play" in parts:
        play_cost()
    if "dashboard" in parts:
        dashboard_cost(rounds, steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
