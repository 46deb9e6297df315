"""Training speed at the default thread count against fixed ones, idle and beside a busy process.

    python benchmarks/threads_under_load.py [--rounds 2] [--steps 5000] [--resume]

A laptop, a shared server or a sweep with several jobs is never idle, and two torch threads
on two busy cores spin-wait each other to a crawl. So each preset (pendulum, lunar) trains
`--steps` headless steps at `threads=0` (the default), 1 and 2, once on an idle machine and
once beside one CPU-bound process (a `while True` loop), in fresh processes. The time taken
is the run's own training clock per 1,000 steps of its update phase (warm-up, evaluation, saves
and start-up excluded), so the figure is the training loop's speed, not the process's. A run
that has not finished after 2 minutes of wall time is stopped and timed on the steps it did.

Rounds alternate the arms so that a drift in machine load hits all alike. Every finished
run is appended to benchmarks/results/threads-under-load.jsonl at once; `--resume` skips the
runs already there, so a cut session loses at most the run it was in. The table compares the
default with the better fixed choice in each case (goals: within 1.05x idle, 1.15x loaded).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "threads-under-load.jsonl"
PRESETS = ("pendulum", "lunar-lander-continuous")
THREADS = (0, 1, 2)  # 0: the default (auto)
LOADS = ("idle", "loaded")
BUSY_LOOP = "while True: pass"


# One run in a fresh process: the preset's config with a short warm-up and nothing but training,
# stopped after CAP_SECONDS of wall time if it is that slow. It prints the training clock's
# seconds per 1,000 steps of the update phase (warm-up, evaluation and saves excluded).
RUN_SCRIPT = """
import sys, threading
from agents.events import StepStats
from agents.trainer import Trainer
from presets import load_preset
preset, threads, steps, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
config = load_preset(preset).config.replace(total_steps=steps, learning_starts=500, eval_every=0, save_every=0,
                                     eval_episodes=1, threads=threads)
stats = []
trainer = Trainer(config, lambda e: stats.append(e) if isinstance(e, StepStats) else None, None, front_end="headless")
threading.Timer(cap, trainer.controls.stop).start()
trainer.run()
first = next(s for s in stats if s.step >= 500)
seconds = (trainer.clock.elapsed - first.elapsed) / max(1, trainer.step - first.step) * 1000
print(seconds, trainer.step)
import os; os._exit(0)
"""
CAP_SECONDS = 120


def train_once(preset: str, threads: int, steps: int) -> float:
    result = subprocess.run([sys.executable, "-c", RUN_SCRIPT, preset, str(threads), str(steps), str(CAP_SECONDS)],
                            check=True, cwd=ROOT, capture_output=True, text=True)
    return float(result.stdout.split()[0])


def measure(preset: str, threads: int, load: str, steps: int) -> float:
    busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if load == "loaded" else None
    try:
        return train_once(preset, threads, steps)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def done_runs(steps: int) -> list[dict]:
    if not RESULTS.exists():
        return []
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    return [row for row in rows if row["steps"] == steps]


def table(rows: list[dict]) -> str:
    # Seconds of training time per 1,000 update-phase steps, the median over rounds.
    # The last column is the same ratio within each round, which drift between rounds does not touch.
    lines = ["| preset | machine | default | threads=1 | threads=2 | default / better fixed | per round |",
             "|---|---|---|---|---|---|---|"]
    for preset in PRESETS:
        for load in LOADS:
            median = {}
            for threads in THREADS:
                times = [r["seconds"] for r in rows
                         if (r["preset"], r["load"], r["threads"]) == (preset, load, threads)]
                median[threads] = statistics.median(times) if times else None
            if None in median.values():
                continue
            better = min(median[1], median[2])
            lines.append(f"| {preset} | {load} | {median[0]:.1f} | {median[1]:.1f} | {median[2]:.1f} "
                         f"| **{median[0] / better:.2f}** | {per_round(rows, preset, load)} |")
    return "\n".join(lines)


def per_round(rows: list[dict], preset: str, load: str) -> str:
    ratios = []
    for round_index in sorted({r["round"] for r in rows}):
        seconds = {r["threads"]: r["seconds"] for r in rows
                   if (r["round"], r["preset"], r["load"]) == (round_index, preset, load)}
        if len(seconds) == len(THREADS):
            ratios.append(seconds[0] / min(seconds[1], seconds[2]))
    return ", ".join(f"{ratio:.2f}" for ratio in ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--resume", action="store_true", help="skip the runs already in the results file")
    args = parser.parse_args()
    if not args.resume and RESULTS.exists():
        RESULTS.unlink()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    done = done_runs(args.steps)
    for round_index in range(args.rounds):
        for load in LOADS:
            for preset in PRESETS:
                for threads in (THREADS if round_index % 2 == 0 else THREADS[::-1]):
                    key = (round_index, preset, load, threads)
                    if any((r["round"], r["preset"], r["load"], r["threads"]) == key for r in done):
                        continue
                    seconds = measure(preset, threads, load, args.steps)
                    row = {"round": round_index, "preset": preset, "load": load, "threads": threads,
                           "steps": args.steps, "seconds": seconds}
                    with RESULTS.open("a") as results:
                        results.write(json.dumps(row) + "\n")
                    done.append(row)
                    print(f"round {round_index + 1}: {preset:26} {load:6} threads={threads}: {seconds:6.1f} s",
                          flush=True)
    print(table(done))


if __name__ == "__main__":
    main()
