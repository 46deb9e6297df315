"""Speed, side by side in one run: ddpg-tui against Stable-Baselines3 and against the limit.

    pip install stable-baselines3        # the `bench` extra
    python benchmarks/speed.py           # everything (about 10 minutes on 2 cores)
    python benchmarks/speed.py --quick   # one round, one seed, no scaling table

Measures, each contender in its own subprocess so thread settings and peak memory are its own:
  (a) time-to-solve: training seconds (evaluations excluded) until the first evaluation
      (every 1000 steps, 10 episodes, noise off) reaches -200 on Pendulum-v1: the pendulum
      preset against SB3 DDPG with the rl-zoo Pendulum config; median over seeds;
  (b) learning-phase steps/s at equal work (256x256, batch 256, one critic and one actor
      update per env step): ddpg-tui headless, ddpg-tui with the dashboard open (Textual's
      headless driver, every widget still rendered), and SB3; rounds alternate;
  (c) the limit: our update in a tight loop on a preallocated batch, plus one env step and
      one action per iteration: what this machine can do for the same work;
  (d) peak RSS, and the replay buffer's bytes against capacity x bytes per transition;
  (e) start-up: `ddpg-tui --help`, and `ddpg-tui` from the command to the preset list drawn in a
      120x40 pty (what a user waits for; `--startup` measures only this, in seconds);
plus steps/s against hidden size and batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LEARNING_STARTS = 500


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Workers: each runs in a fresh process and prints one JSON line --------------------------


def worker_ours(steps: int, hidden: int, batch: int, dashboard: bool, threads: int) -> dict[str, Any]:
    from agents.config import DDPGConfig
    from agents.events import StepStats

    config = DDPGConfig(env_id="Pendulum-v1", total_steps=LEARNING_STARTS + steps, learning_starts=LEARNING_STARTS,
                        batch_size=batch, hidden_sizes=(hidden, hidden), buffer_size=200_000, eval_every=0,
                        eval_episodes=1, threads=threads, device="cpu")
    marks: dict[int, float] = {}

    def record(event: object) -> None:
        if isinstance(event, StepStats):
            marks[event.step] = event.elapsed

    if dashboard:
        import asyncio

        from ddpg_tui.request import TrainingRequest
        from ddpg_tui.ui.app import DDPGApp
        from ddpg_tui.ui.session import TrainingSession

        class RecordingSession(TrainingSession):
            def sink(self, event: object) -> None:
                record(event)
                super().sink(event)  # type: ignore[arg-type]

        session = RecordingSession(TrainingRequest(config, Path("/tmp/ddpg-speed-dashboard")))

        async def drive() -> None:
            app = DDPGApp(session=session)
            async with app.run_test(size=(120, 40)) as pilot:
                while session.snapshot().state.value not in ("finished", "error"):
                    await pilot.pause(0.1)

        asyncio.run(drive())
    else:
        from agents.trainer import Trainer

        trainer = Trainer(config, record)
        trainer.run()
    start, end = marks[LEARNING_STARTS], marks[max(marks)]
    return {"steps_per_second": (max(marks) - LEARNING_STARTS) / (end - start), "peak_rss_mb": peak_rss_mb()}


def _sb3_pendulum(hidden: tuple[int, ...], batch: int, learning_starts: int, seed: int, gamma: float = 0.99):
    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import DDPG
    from stable_baselines3.common.noise import NormalActionNoise

    env = gym.make("Pendulum-v1")
    noise = NormalActionNoise(mean=np.zeros(1), sigma=0.1 * np.ones(1))
    return DDPG("MlpPolicy", env, learning_rate=1e-3, buffer_size=200_000, learning_starts=learning_starts,
                batch_size=batch, gamma=gamma, train_freq=1, gradient_steps=1, action_noise=noise,
                policy_kwargs={"net_arch": list(hidden)}, seed=seed, device="cpu", verbose=0), env


def worker_sb3(steps: int, hidden: int, batch: int, threads: int) -> dict[str, Any]:
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(threads)
    model, _ = _sb3_pendulum((hidden, hidden), batch, LEARNING_STARTS, seed=0)
    marks: dict[str, float] = {}

    class Clock(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == LEARNING_STARTS:
                marks["start"] = time.perf_counter()
            return True

    model.learn(total_timesteps=LEARNING_STARTS + steps, callback=Clock())
    elapsed = time.perf_counter() - marks["start"]
    return {"steps_per_second": steps / elapsed, "peak_rss_mb": peak_rss_mb()}


def worker_limit(steps: int, hidden: int, batch: int, threads: int) -> dict[str, Any]:
    """Our update on a fixed, preallocated batch, plus one env step and one action per iteration."""
    import gymnasium as gym
    import numpy as np
    import torch

    from agents.config import DDPGConfig
    from agents.ddpg import DDPGAgent
    from agents.envs import env_spec
    from agents.replay_buffer import Batch

    torch.set_num_threads(threads)
    env = gym.make("Pendulum-v1")
    agent = DDPGAgent(env_spec(env, "Pendulum-v1"), DDPGConfig(hidden_sizes=(hidden, hidden)), torch.device("cpu"))
    batch_data = Batch(torch.randn(batch, 3), torch.rand(batch, 1) * 4 - 2, torch.randn(batch), torch.randn(batch, 3),
                       torch.zeros(batch))
    obs, _ = env.reset(seed=0)
    for _ in range(50):
        agent.update(batch_data)
    start = time.perf_counter()
    for _ in range(steps):
        action = agent.act(obs)
        obs, _, terminated, truncated, _ = env.step(np.clip(action, -2, 2))
        if terminated or truncated:
            obs, _ = env.reset()
        agent.update(batch_data)
    return {"steps_per_second": steps / (time.perf_counter() - start), "peak_rss_mb": peak_rss_mb()}


def worker_solve_ours(seed: int, threads: int) -> dict[str, Any]:
    """The pendulum preset, evaluated every 1000 steps: time_to_solve.py's own worker."""
    from time_to_solve import worker_ours  # a sibling: benchmarks/ is sys.path[0] when run as a script

    return worker_ours("pendulum", seed, threads, eval_every=1000, max_steps=30_000)


def worker_solve_sb3(seed: int, threads: int) -> dict[str, Any]:
    """SB3 DDPG with rl-zoo's Pendulum config (gamma 0.98, buffer 200k, learning_starts 10k, noise 0.1, 400x300)."""
    from time_to_solve import worker_sb3

    return worker_sb3("pendulum", seed, threads, eval_every=1000, max_steps=30_000)


def worker_memory() -> dict[str, Any]:
    from agents.replay_buffer import ReplayBuffer

    buffer = ReplayBuffer(1_000_000, obs_dim=8, act_dim=2)
    return {"nbytes": buffer.nbytes, "ideal": 1_000_000 * buffer.bytes_per_transition,
            "bytes_per_transition": buffer.bytes_per_transition}


WORKERS = {"ours": worker_ours, "sb3": worker_sb3, "limit": worker_limit, "solve_ours": worker_solve_ours,
           "solve_sb3": worker_solve_sb3, "memory": worker_memory}


# Driver -----------------------------------------------------------------------------


def spawn(name: str, **kwargs: Any) -> dict[str, Any]:
    result = subprocess.run([sys.executable, __file__, "--worker", name, "--args", json.dumps(kwargs)],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# Start-up: timed from outside, as a user waits for it --------------------------------------

ANSI = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])")
PICKER_TEXT = "Choose an environment"  # the picker's first line: the preset list is drawn with it


def time_help() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ddpg_tui", "--help"], capture_output=True, check=True, cwd=ROOT)
    return time.perf_counter() - start


def time_first_screen(timeout: float = 30.0) -> float:
    """Seconds from starting `ddpg-tui` in a 120x40 pty until the picker's text is on the terminal.

    The run's cwd is an empty folder, so the picker's recent-runs line has nothing to list.
    """
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    with tempfile.TemporaryDirectory() as cwd:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "ddpg_tui"], stdin=slave, stdout=slave, stderr=slave,
                                   cwd=cwd, start_new_session=True,
                                   env={**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(ROOT)})
        os.close(slave)
        output = bytearray()
        try:
            while PICKER_TEXT not in ANSI.sub("", output.decode("utf-8", "replace")):
                if time.perf_counter() - start > timeout or process.poll() is not None:
                    raise RuntimeError(f"the picker never appeared:\n{output[-2000:].decode('utf-8', 'replace')}")
                output.extend(os.read(master, 65536))
            seconds = time.perf_counter() - start
            os.write(master, b"\x03")  # Ctrl+C: the picker exits at once
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(master)
    return seconds


def startup(rounds: int) -> None:
    """Medians over `rounds`; the first round of each also warms the file cache for the next."""
    print(f"\n(e) start-up, median (min-max) of {rounds}:")
    for name, measure in (("ddpg-tui --help", time_help), ("ddpg-tui to the preset list", time_first_screen)):
        times = [measure() for _ in range(rounds)]
        print(f"  {name:<28} {statistics.median(times):.2f} s ({min(times):.2f}-{max(times):.2f})")


def fmt_solve(result: dict[str, Any]) -> str:
    if result["seconds"] is None:
        return "not solved"
    return f"{result['seconds']:5.1f} s at step {result['step']:,} (eval {result['eval']:.0f})"


def equal_work(threads: int, rounds: int, steps: int) -> dict[str, float]:
    print(f"\n(b, c) learning-phase steps/s at equal work, torch threads {threads}: 256x256, batch 256, "
          "1 critic + 1 actor update per step")
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "dashboard": [], "sb3": [], "limit": []}
    work = {"steps": steps, "hidden": 256, "batch": 256, "threads": threads}
    for r in range(rounds):  # alternate contenders so that drifts in machine load hit each alike
        runs["ours"].append(spawn("ours", dashboard=False, **work))
        runs["sb3"].append(spawn("sb3", **work))
        runs["dashboard"].append(spawn("ours", dashboard=True, **work))
        runs["limit"].append(spawn("limit", **work))
        print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]['steps_per_second']:.0f}" for k, v in runs.items()))
    sps = {k: statistics.median(v["steps_per_second"] for v in values) for k, values in runs.items()}
    rss = {k: max(v["peak_rss_mb"] for v in values) for k, values in runs.items()}
    for name in ("ours", "dashboard", "sb3", "limit"):
        print(f"  {name:<10} {sps[name]:7.0f} steps/s (median of {rounds})   peak RSS {rss[name]:.0f} MB")
    print(f"  ratio ours/SB3 {sps['ours'] / sps['sb3']:.2f}   ours/limit {sps['ours'] / sps['limit']:.2f}   "
          f"dashboard/headless {sps['dashboard'] / sps['ours']:.2f}")
    return sps


def main() -> int:
    from agents.trainer import default_threads

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--args", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="one round, one seed, no scaling table")
    parser.add_argument("--startup", action="store_true", help="measure only the start-up times (e)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000, help="learning-phase steps per steps/s measurement")
    parser.add_argument("--threads", type=int, nargs="+", default=[default_threads()],
                        help="torch thread counts for the equal-work comparison (both sides get the same); "
                             "default: what ddpg-tui picks on this machine")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](**json.loads(args.args))))
        return 0

    if args.startup:
        startup(rounds=max(args.rounds, 5))
        return 0
    rounds, seeds = (1, 1) if args.quick else (args.rounds, args.seeds)
    threads = default_threads()
    print(f"speed benchmark: Pendulum-v1, {os.cpu_count()} cores; ddpg-tui's default here: {threads} torch thread(s)")
    for count in args.threads:
        equal_work(count, rounds, args.steps)

    print(f"\n(a) time-to-solve, torch threads {threads}: training seconds until the first evaluation >= -200 "
          "(every 1000 steps, 10 episodes)")
    solved: dict[str, list[dict[str, Any]]] = {"ours": [], "sb3": []}
    for seed in range(seeds):
        solved["ours"].append(spawn("solve_ours", seed=seed, threads=threads))
        solved["sb3"].append(spawn("solve_sb3", seed=seed, threads=threads))
        print(f"  seed {seed}: ours {fmt_solve(solved['ours'][-1])};  SB3+zoo {fmt_solve(solved['sb3'][-1])}")
    medians = {}
    for name, results in solved.items():
        seconds = [r["seconds"] for r in results if r["seconds"] is not None]
        medians[name] = statistics.median(seconds) if len(seconds) == len(results) else None
        shown = "not all seeds solved" if medians[name] is None else f"{medians[name]:.1f} s"
        print(f"  {name:<5} median {shown}")
    if medians["ours"] and medians["sb3"]:
        print(f"  ratio ours/SB3+zoo time-to-solve {medians['ours'] / medians['sb3']:.2f}")

    startup(rounds=5)

    memory = spawn("memory")
    print(f"\n(d) replay buffer, 1M LunarLander transitions: {memory['nbytes'] / 2**20:.1f} MiB = "
          f"{memory['nbytes'] / memory['ideal']:.2f} x capacity x {memory['bytes_per_transition']} bytes/transition")

    if not args.quick:
        scaling(threads)
    return 0


def scaling(threads: int) -> None:
    """Steps/s against network and batch size; `ours/limit` near 1 means the update's math is the whole cost."""
    print(f"\nscaling, torch threads {threads}: ddpg-tui headless steps/s (in brackets: ours/limit)")
    batches = (64, 256, 1024)
    print("  hidden   " + "".join(f"batch {b:<10}" for b in batches))
    for hidden in (64, 256, 1024):
        cells = []
        for batch in batches:
            work = {"steps": 300 if hidden * batch <= 256 * 256 else 60, "hidden": hidden, "batch": batch,
                    "threads": threads}
            ours = spawn("ours", dashboard=False, **work)["steps_per_second"]
            limit = spawn("limit", **work)["steps_per_second"]
            cells.append(f"{ours:.0f} ({ours / limit:.2f})")
        print(f"  {hidden:<8} " + "".join(f"{c:<16}" for c in cells))


if __name__ == "__main__":
    raise SystemExit(main())
