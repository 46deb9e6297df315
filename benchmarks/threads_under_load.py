"""Training speed at the default thread count against fixed ones, idle and beside a busy process.

    python benchmarks/threads_under_load.py [--rounds 2] [--steps 2500] [--resume]

A laptop, a shared server or a sweep with several jobs is never idle, and two torch threads
on two busy cores spin-wait each other to a crawl. So each preset (pendulum, lunar) trains
`--steps` headless steps at `threads=0` (the default), 1 and 2, once on an idle machine and
once beside one CPU-bound process (a `while True` loop), in fresh processes. The time taken
is the run's own training clock (the last `elapsed` in metrics.jsonl: evaluation, saves and
start-up excluded), so the figure is the training loop's speed, not the process's.

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
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "threads-under-load.jsonl"
PRESETS = ("pendulum", "lunar-lander-continuous")
THREADS = (0, 1, 2)  # 0: the default (auto)
LOADS = ("idle", "loaded")
BUSY_LOOP = "while True: pass"


def training_seconds(run_dir: Path) -> float:
    """The last training-clock reading the run recorded."""
    elapsed = 0.0
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "elapsed" in row:
            elapsed = max(elapsed, float(row["elapsed"]))
    return elapsed


def train_once(preset: str, threads: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(scratch) / "run"
        subprocess.run(
            [sys.executable, "-m", "ddpg_tui.cli", "train", "--headless", "--preset", preset,
             "--steps", str(steps), "--run-dir", str(run_dir),
             "--set", "learning_starts=500", "eval_every=0", "save_every=0", "eval_episodes=1",
             f"threads={threads}"],
            check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        return training_seconds(run_dir)


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
    lines = ["| preset | machine | default (s) | threads=1 (s) | threads=2 (s) | default / better fixed |",
             "|---|---|---|---|---|---|"]
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
                         f"| **{median[0] / better:.2f}** |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2500)
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
