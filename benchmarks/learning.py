"""Learning benchmark: train a preset on several seeds and report deterministic evaluations.

    python benchmarks/learning.py --preset pendulum --seeds 0 1 2
    python benchmarks/learning.py --preset mountain-car-continuous --seeds 0 1 2 --jobs 2
    python benchmarks/learning.py --preset lunar-lander-continuous --set actor_lr=3e-4 --tag alr3e-4

Writes `<out>/<preset>-curve.csv` (one row per evaluation per seed), a text plot of it and
`<out>/<preset>-summary.txt`: each seed's final and best evaluation return (10 episodes, noise
off, eval env seeded apart from training) and its training steps per second. Each seed's run
directory (checkpoints/best.pt and latest.pt) goes to benchmarks/runs/, for `ddpg-tui eval`.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plot_curves import read_curve, write_plot  # a sibling: benchmarks/ is sys.path[0] when run as a script

from agents.config import parse_assignment
from agents.events import EvalResult, StepStats
from agents.trainer import Trainer
from presets import load_preset


def run_seed(preset_name: str, seed: int, steps: int | None, eval_every: int | None,
             threads: int, out: Path, overrides: dict[str, object], label: str,
             runs: Path | None) -> list[dict[str, float]]:
    preset = load_preset(preset_name)
    config = preset.config.replace(seed=seed, threads=threads, **overrides)
    if steps:
        config = config.replace(total_steps=steps)
    if eval_every:
        config = config.replace(eval_every=eval_every)
    rows: list[dict[str, float]] = []
    latest: dict[str, float] = {"elapsed": 0.0, "sps": 0.0}
    started = time.perf_counter()
    # Each evaluation is written as it happens, so a long run cut short still leaves its curve.
    partial = out / f"{label}-seed{seed}.partial.csv"
    out.mkdir(parents=True, exist_ok=True)
    partial.write_text("preset,seed,step,eval_mean,eval_std,train_seconds,wall_seconds\n")

    def sink(event: object) -> None:
        if isinstance(event, StepStats):
            latest["elapsed"] = event.elapsed
            if event.step > 0 and event.elapsed > 0:
                latest["sps"] = event.step / event.elapsed
        elif isinstance(event, EvalResult):
            rows.append({"preset": preset_name, "seed": seed, "step": event.step, "eval_mean": event.mean,
                         "eval_std": event.std, "train_seconds": latest["elapsed"],
                         "wall_seconds": time.perf_counter() - started})
            with partial.open("a") as handle:
                handle.write(",".join(str(v) for v in rows[-1].values()) + "\n")

    # The run directory keeps best.pt and latest.pt, so `ddpg-tui eval` can re-evaluate them on fresh episodes.
    run_dir = runs / f"{label}-seed{seed}" if runs is not None else None
    outcome = Trainer(config, sink, run_dir, save_replay_buffer=False).run()
    if outcome.error:
        raise RuntimeError(f"seed {seed}: {outcome.error}")
    for row in rows:
        row["steps_per_second"] = latest["sps"]
    partial.unlink()
    return rows


def summary_lines(title: str, by_seed: dict[int, list[dict[str, float]]], threshold: float | None) -> list[str]:
    lines = [title,
             f"{'seed':>4} {'steps':>8} {'final eval':>12} {'best eval':>10} {'first solved at':>16} {'steps/s':>8}"]
    finals = []
    for seed, rows in by_seed.items():
        final = rows[-1]
        finals.append(final["eval_mean"])
        best = max(r["eval_mean"] for r in rows)
        solved = next((r["step"] for r in rows if threshold is not None and r["eval_mean"] >= threshold), None)
        lines.append(f"{seed:>4} {int(final['step']):>8,} {final['eval_mean']:>7.1f}±{final['eval_std']:<4.0f} "
                     f"{best:>10.1f} {'-' if solved is None else f'{int(solved):,}':>16} "
                     f"{final['steps_per_second']:>8.0f}")
    lines.append(f"median final eval {statistics.median(finals):.1f} (solved threshold {threshold})")
    by_step: dict[int, list[float]] = {}
    for rows in by_seed.values():
        for row in rows:
            by_step.setdefault(int(row["step"]), []).append(row["eval_mean"])
    medians = ", ".join(f"{step:,}: {statistics.median(v):.0f}" for step, v in sorted(by_step.items()))
    lines.append(f"median eval by step: {medians}")
    return lines


def report(title: str, by_seed: dict[int, list[dict[str, float]]], threshold: float | None, curve: Path) -> None:
    """Print the summary and write it and the text plot beside the curve CSV."""
    lines = summary_lines(title, by_seed, threshold)
    summary = curve.with_name(curve.name.replace("-curve.csv", "-summary.txt"))
    summary.write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    print(f"curve in {curve}, summary in {summary}, plot in {write_plot(curve, threshold)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="pendulum")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, help="override the preset's total_steps")
    parser.add_argument("--eval-every", type=int, help="override the preset's eval_every")
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained in parallel processes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset hyperparameter, e.g. --set hidden_sizes=[256,256]")
    parser.add_argument("--tag", help="suffix for the output files, to keep a variant apart from the preset's own")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--runs", type=Path, default=Path(__file__).parent / "runs",
                        help="where each seed's run directory (checkpoints, metrics) goes; git-ignored")
    parser.add_argument("--no-runs", action="store_true", help="keep no checkpoints")
    parser.add_argument("--summarize", type=Path, metavar="CURVE_CSV",
                        help="train nothing: rebuild the summary and plot of an earlier run's curve")
    args = parser.parse_args()

    if args.summarize:  # the curve names its preset, so --preset is not needed
        preset_name, by_seed = read_curve(args.summarize)
        preset = load_preset(preset_name)
        title = f"{args.summarize.name.removesuffix('-curve.csv')} ({preset.env_id}); eval: 10 episodes, noise off"
        report(title, by_seed, preset.solved_threshold, args.summarize)
        return 0
    preset = load_preset(args.preset)
    overrides = dict(parse_assignment(a) for a in args.assignments)
    label = f"{args.preset}-{args.tag}" if args.tag else args.preset
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_seed, args.preset, seed, args.steps, args.eval_every, args.threads, args.out,
                               overrides, label, None if args.no_runs else args.runs)
                   for seed in args.seeds]
        results = [future.result() for future in futures]

    args.out.mkdir(parents=True, exist_ok=True)
    curve = args.out / f"{label}-curve.csv"
    with curve.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(results[0][0]))
        writer.writeheader()
        for rows in results:
            writer.writerows(rows)

    changed = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "preset as shipped"
    title = f"{args.preset} ({preset.env_id}; {changed}), {len(args.seeds)} seeds; eval: 10 episodes, noise off"
    report(title, dict(zip(args.seeds, results, strict=True)), preset.solved_threshold, curve)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
