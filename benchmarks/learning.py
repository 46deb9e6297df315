"""Learning benchmark: a preset on several seeds, run as one `ddpg-tui sweep`, reported from its results.

    python benchmarks/learning.py --preset pendulum --seeds 0 1 2
    python benchmarks/learning.py --preset lunar-lander-continuous --jobs 3 --reeval 100
    python benchmarks/learning.py --preset lunar-lander-continuous --set actor_lr=3e-4 --tag alr3e-4
    python benchmarks/learning.py --summarize benchmarks/results/pendulum-curve.csv

The seeds run as one sweep on Ray Tune (runs/sweeps/learning-<label>/, one ordinary run folder per seed,
so `ddpg-tui eval` and `train --resume` work on each). Running the same command again carries an
interrupted benchmark on (`ddpg-tui sweep --resume`): finished seeds are kept. Ctrl+C (or SIGTERM to
this script) stops the sweep with every trial saving, and the files below are then written as
<label>-partial-*, until a later run of the same command finishes and replaces them. Afterwards this
script writes, under benchmarks/results/:
  <label>-curve.csv     every seed's evaluations (10 episodes, noise off, eval env seeded apart), from
                        each trial's metrics.jsonl
  <label>-curve.txt     the text plot of it
  <label>-summary.txt   each seed's final and best evaluation, first solved step and steps/s
  <label>-summary.md    the sweep's own summary.md: the median and IQR over seeds (and on fresh
                        episodes with --reeval), which docs/results.md's tables quote
  <label>-reeval.txt    with --reeval N: each seed's final policy on N fresh episodes (the sweep's
                        summary.csv), with the step it was measured at
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import signal
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plot_curves import read_curve, write_plot  # a sibling: benchmarks/ is sys.path[0] when run as a script
from readme_results import RESULTS_PAGE, update_readme

from ddpg_tui.request import plural
from presets import load_preset

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results"
CURVE_FIELDS = ["preset", "seed", "step", "eval_mean", "eval_std", "train_seconds", "wall_seconds"]


def run_sweep(args: argparse.Namespace, label: str) -> tuple[Path, bool]:
    """Run (or carry on) the seeds as one headless sweep; returns its folder and whether it finished.

    Ctrl+C (or SIGTERM to this script) stops the sweep with every trial saving, as it does for
    `ddpg-tui sweep`; this script then still writes what was measured, labelled partial, and the
    same command carries the sweep on later.
    """
    sweep_dir = ROOT / "runs" / "sweeps" / f"learning-{label}"
    command = [sys.executable, "-m", "ddpg_tui", "sweep", "--headless"]
    if (sweep_dir / "sweep.json").exists():
        command += ["--resume", str(sweep_dir)]
    else:
        command += ["--preset", args.preset, "--seeds", ",".join(str(s) for s in args.seeds),
                    "--name", sweep_dir.name]
        for assignment in args.assignments:
            command += ["--set", assignment]
        if args.steps:
            command += ["--steps", str(args.steps)]
        if args.eval_every:
            command += ["--set", f"eval_every={args.eval_every}"]
        if args.reeval:
            command += ["--reeval", str(args.reeval)]
    if args.jobs:
        command += ["--jobs", str(args.jobs)]
    print("$ " + " ".join(command[1:]), flush=True)
    sweep = subprocess.Popen(command, cwd=ROOT)
    # Ctrl+C reaches the sweep from the terminal; SIGTERM is passed on. Either way, wait for its saves.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: sweep.send_signal(signal.SIGTERM))
    code = sweep.wait()
    if code != 0 and not (sweep_dir / "summary.csv").exists():
        raise SystemExit(f"the sweep ended with exit code {code} before writing any summary")
    return sweep_dir, code == 0


def curve_rows(sweep_dir: Path, preset: str) -> list[dict[str, object]]:
    """Every trial's evaluations, from its own metrics.jsonl; steps/s from the sweep's summary.csv."""
    rows: list[dict[str, object]] = []
    with (sweep_dir / "summary.csv").open(newline="") as handle:
        trials = list(csv.DictReader(handle))
    for trial in trials:
        seconds = float(trial["train_seconds"] or 0)
        metrics = sweep_dir / trial["trial"] / "metrics.jsonl"
        if not metrics.exists():  # a trial an interrupted sweep never started
            continue
        for line in metrics.read_text().splitlines():
            event = json.loads(line)
            if event["kind"] == "eval":
                rows.append({"preset": preset, "seed": int(trial["seed"]), "step": event["step"],
                             "eval_mean": event["mean"], "eval_std": event["std"],
                             # per-evaluation time is not in metrics.jsonl; the trial's total is
                             "train_seconds": seconds, "wall_seconds": float(trial["wall_seconds"] or 0)})
    return rows


def reeval_report(sweep_dir: Path, label: str) -> list[str]:
    """Each trial's final policy on fresh episodes, as the sweep measured it (`--reeval N`); [] if it did not."""
    with (sweep_dir / "summary.csv").open(newline="") as handle:
        trials = [t for t in csv.DictReader(handle) if t.get("reeval_mean")]
    if not trials:
        return []
    spec = json.loads((sweep_dir / "sweep.json").read_text())
    episodes = spec.get("reeval", 0)
    title = (f"{label}: each seed's final policy (latest.pt) on {episodes} fresh episodes, noise off "
             f"(ddpg-tui sweep --reeval {episodes}; env seeds apart from training and evaluation)")
    return reeval_table(title, [(int(t["seed"]), int(t["steps"]), float(t["reeval_mean"]), float(t["reeval_std"]))
                                for t in trials])


def reeval_table(title: str, seeds: list[tuple[int, int, float, float]]) -> list[str]:
    """The lines of a <label>-reeval.txt: (seed, step, mean, std) per seed, then the median and the worst."""
    lines = [title, f"{'seed':>4} {'step':>8} {'mean':>8} {'std':>7}"]
    lines += [f"{seed:>4} {step:>8,} {mean:>8.1f} {std:>7.1f}" for seed, step, mean, std in seeds]
    means = [mean for _, _, mean, _ in seeds]
    lines.append(f"median {statistics.median(means):.1f}, worst seed {min(means):.1f}")
    return lines


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
                     f"{final['step'] / final['train_seconds'] if final['train_seconds'] else 0:>8.0f}")
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
    parser.add_argument("--jobs", type=int, help="CPUs for the sweep (default: every core); torch threads per "
                        "seed = CPUs / seeds at once")
    parser.add_argument("--reeval", type=int, help="also evaluate each final policy on N fresh episodes")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset hyperparameter, e.g. --set hidden_sizes=[256,256]")
    parser.add_argument("--tag", help="suffix for the output files, to keep a variant apart from the preset's own")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
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
    label = f"{args.preset}-{args.tag}" if args.tag else args.preset
    sweep_dir, finished = run_sweep(args, label)

    args.out.mkdir(parents=True, exist_ok=True)
    for stale in args.out.glob(f"{label}-partial-*"):
        stale.unlink()  # a finished sweep replaces what an interrupted one left; an interrupted one, its own
    if not finished:
        label = f"{label}-partial"
        print(f"PARTIAL: the sweep did not finish; its results so far are written as {label}-*; "
              "the same command carries it on")
    curve = args.out / f"{label}-curve.csv"
    with curve.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CURVE_FIELDS)
        writer.writeheader()
        writer.writerows(curve_rows(sweep_dir, args.preset))
    shutil.copyfile(sweep_dir / "summary.md", args.out / f"{label}-summary.md")
    if args.out == DEFAULT_OUT:
        update_readme(RESULTS_PAGE)  # its results table comes from the summaries, never typed
    reeval_lines = reeval_report(sweep_dir, label)
    if reeval_lines:
        (args.out / f"{label}-reeval.txt").write_text("\n".join(reeval_lines) + "\n")
        print("\n".join(reeval_lines))
    changed = ", ".join(args.assignments) or "preset as shipped"
    _, by_seed = read_curve(curve)
    title = f"{args.preset} ({preset.env_id}; {changed}), {plural(len(by_seed), 'seed')}; eval: 10 episodes, noise off"
    if not finished:
        title = "PARTIAL (the sweep was stopped; rerun the same command to carry it on): " + title
    report(title, by_seed, preset.solved_threshold, curve)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
