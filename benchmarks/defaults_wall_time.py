"""Whole-process wall time at the defaults a user gets: `ddpg-tui train --headless` against SB3 DDPG.

    pip install stable-baselines3        # the `bench` extra
    python benchmarks/defaults_wall_time.py [--rounds 3]

The same work on both sides: Pendulum-v1, 400x300 nets, batch 256, 6,000 env steps, learning
from step 1,000, one update per step. Each side runs at its own defaults otherwise (threads
included: ours picks every core for a headless run; SB3 leaves torch at its default). Each
run is a fresh process timed from outside, start-up and imports included; rounds alternate
so that drifts in machine load hit both alike. Ours also runs its final 10-episode
evaluation (it always does); SB3 has none, so the comparison leans against us.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS, LEARNING_STARTS = 6000, 1000

SB3_SCRIPT = f"""
from stable_baselines3 import DDPG
DDPG("MlpPolicy", "Pendulum-v1", learning_starts={LEARNING_STARTS}, seed=0).learn(total_timesteps={STEPS})
"""

# The floor for this work in torch: a fresh process that imports only torch, gymnasium and the agent,
# steps the env 6,000 times and, after the first 1,000, runs our update 5,000 times on random
# minibatches of those first 1,000 transitions. No replay buffer, noise, events, evaluation or
# checkpoint. (One fixed random batch instead measured slower than our whole program: no floor.)
# Our update is close to the least tensor math DDPG's update needs (the actor step computes no
# critic weight gradients; fused Adam; one fused soft update), so this is the time of the work
# itself, and what a whole program takes above it is that program's overhead.
FLOOR_SCRIPT = f"""
import gymnasium as gym, numpy as np, torch
from agents.config import DDPGConfig
from agents.ddpg import DDPGAgent
from agents.envs import env_spec
from agents.replay_buffer import Batch
env = gym.make("Pendulum-v1")
agent = DDPGAgent(env_spec(env, "Pendulum-v1"), DDPGConfig(hidden_sizes=(400, 300)), torch.device("cpu"))
seen = []
obs, _ = env.reset(seed=0)
for step in range({STEPS}):
    action = env.action_space.sample() if step < {LEARNING_STARTS} else np.clip(agent.act(obs), -2, 2)
    next_obs, reward, terminated, truncated, _ = env.step(action)
    if step < {LEARNING_STARTS}:
        seen.append((obs, action, reward, next_obs, terminated))
    obs = next_obs
    if terminated or truncated:
        obs, _ = env.reset()
    if step == {LEARNING_STARTS} - 1:
        columns = [torch.as_tensor(np.array(column), dtype=torch.float32) for column in zip(*seen)]
    if step >= {LEARNING_STARTS}:
        index = torch.randint(0, {LEARNING_STARTS}, (256,))
        agent.update(Batch(*(column[index] for column in columns)))
"""


def ours_command(run_dir: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "ddpg_tui", "train", "--headless", "--env", "Pendulum-v1",
            "--steps", str(STEPS), "--set", "hidden_sizes=[400,300]", "--set", f"learning_starts={LEARNING_STARTS}",
            "--set", "batch_size=256", "--set", "eval_every=0", "--run-dir", str(run_dir), *extra]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "120"})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--also-one-thread", action="store_true",
                        help="also time ours with --set threads=1 (the old default)")
    parser.add_argument("--floor", action="store_true",
                        help="also time the floor: the same env steps and updates with nothing else around them")
    args = parser.parse_args()
    contenders: dict[str, list[float]] = {"ours (defaults)": [], "SB3 DDPG (defaults)": []}
    if args.also_one_thread:
        contenders["ours, threads=1"] = []
    if args.floor:
        contenders["floor (update loop only)"] = []
    print(f"whole-process wall time, Pendulum-v1, 400x300, batch 256, {STEPS:,} steps, learning from "
          f"{LEARNING_STARTS:,}; {os.cpu_count()} cores")
    scratch = Path(tempfile.mkdtemp(prefix="defaults-wall-"))
    try:
        for round_number in range(1, args.rounds + 1):
            contenders["ours (defaults)"].append(timed(ours_command(scratch / f"ours-{round_number}", [])))
            contenders["SB3 DDPG (defaults)"].append(timed([sys.executable, "-c", SB3_SCRIPT]))
            if args.also_one_thread:
                contenders["ours, threads=1"].append(
                    timed(ours_command(scratch / f"one-{round_number}", ["--set", "threads=1"])))
            if args.floor:
                contenders["floor (update loop only)"].append(timed([sys.executable, "-c", FLOOR_SCRIPT]))
            print(f"  round {round_number}: " + ", ".join(f"{name} {times[-1]:.1f} s"
                                                          for name, times in contenders.items()))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    medians = {name: statistics.median(times) for name, times in contenders.items()}
    for name, median in medians.items():
        print(f"  {name:<26} median {median:6.1f} s  (rounds: {', '.join(f'{t:.1f}' for t in contenders[name])})")
    ratio = medians["ours (defaults)"] / medians["SB3 DDPG (defaults)"]
    print(f"  ratio ours/SB3 at defaults: {ratio:.2f} (target <= 0.75)")
    if args.floor:
        floor = medians["floor (update loop only)"] / medians["SB3 DDPG (defaults)"]
        print(f"  ratio floor/SB3: {floor:.2f} (the work itself, with no program around it)")


if __name__ == "__main__":
    main()
