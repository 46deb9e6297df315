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


def ours_command(run_dir: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "ddpg_tui.cli", "train", "--headless", "--env", "Pendulum-v1",
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
    args = parser.parse_args()
    contenders = {"ours (defaults)": [], "SB3 DDPG (defaults)": []}
    if args.also_one_thread:
        contenders["ours, threads=1"] = []
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
            print(f"  round {round_number}: " + ", ".join(f"{name} {times[-1]:.1f} s"
                                                          for name, times in contenders.items()))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    medians = {name: statistics.median(times) for name, times in contenders.items()}
    for name, median in medians.items():
        print(f"  {name:<22} median {median:6.1f} s  (rounds: {', '.join(f'{t:.1f}' for t in contenders[name])})")
    ratio = medians["ours (defaults)"] / medians["SB3 DDPG (defaults)"]
    print(f"  ratio ours/SB3 at defaults: {ratio:.2f} (target <= 0.75)")


if __name__ == "__main__":
    main()
