"""The peer's learning curve: SB3 TD3 or DDPG with rl-baselines3-zoo's config, measured as learning.py measures ours.

    pip install stable-baselines3          # the `bench` extra
    taskset -c 1 python benchmarks/sb3_learning.py --preset bipedal-walker --algo td3 --seeds 0 --reeval 100

Same budget (the preset's total_steps), same evaluation schedule (every eval_every steps, 10 episodes, noise
off, episode i from reset(seed=evaluation_seed(seed, i))) and the same evaluation code (agents.evaluation.evaluate)
as our runs; with --reeval N the final policy is scored on N fresh episodes from reset(seed=REEVAL_SEED + i), as
`ddpg-tui sweep --reeval` scores ours. Training seconds exclude evaluations and saves.

Long runs are resumable: every --save-every steps, and on Ctrl+C or SIGTERM, each seed saves its model,
replay buffer and curve under runs/sb3/<label>-seed<N>/, and the same command carries it on. A resumed run
is not bit-identical to an unbroken one (SB3 does not save its RNG states, and the episode in progress
restarts), which is why the curve marks the step each sitting began at. Files, under benchmarks/results/
(<label> = sb3-<algo>-<preset>[-<tag>], with -partial until every seed has finished):
  <label>-curve.csv, -curve.txt   every evaluation, in learning.py's format, and its text plot
  <label>-summary.txt             each seed's final and best evaluation, first solved step, steps/s
  <label>-reeval.txt              with --reeval N: each final policy on N fresh episodes
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learning import CURVE_FIELDS, reeval_table, report  # siblings: benchmarks/ is sys.path[0] when run as a script
from plot_curves import read_curve
from zoo import ALGORITHMS, zoo_model

from agents.evaluation import REEVAL_SEED, evaluate, evaluation_seed
from ddpg_tui.request import plural
from presets import load_preset

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STATE = ROOT / "runs" / "sb3"


class Stop:
    """Set by Ctrl+C or SIGTERM; the training callback ends learn() at the next step so the seed can save."""

    requested = False

    @classmethod
    def install(cls) -> None:
        def request(signum: int, frame: object) -> None:
            cls.requested = True
        signal.signal(signal.SIGINT, request)
        signal.signal(signal.SIGTERM, request)


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=1))
    os.replace(temporary, path)


def run_seed(algo: str, preset_name: str, seed: int, steps: int, eval_every: int, save_every: int,
             reeval: int, folder: Path) -> dict[str, Any]:
    """Train (or carry on) one seed; returns its progress record, with "finished" set when it reached `steps`."""
    import gymnasium as gym
    from stable_baselines3 import DDPG, TD3
    from stable_baselines3.common.callbacks import BaseCallback

    preset = load_preset(preset_name)
    env, eval_env = gym.make(preset.env_id), gym.make(preset.env_id)
    folder.mkdir(parents=True, exist_ok=True)
    progress_file, model_file, buffer_file = folder / "progress.json", folder / "model.zip", folder / "replay.pkl"
    if progress_file.exists() and model_file.exists():
        progress = json.loads(progress_file.read_text())
        model = {"ddpg": DDPG, "td3": TD3}[algo].load(model_file, env=env, device="cpu")
        model.load_replay_buffer(buffer_file)
        print(f"seed {seed}: carrying on from step {model.num_timesteps:,}", flush=True)
    else:
        progress = {"algo": algo, "preset": preset_name, "env_id": preset.env_id, "seed": seed, "steps": steps,
                    "train_seconds": 0.0, "evals": [], "sittings": [], "finished": False}
        model = zoo_model(algo, preset.env_id, env, seed)
    if progress["finished"]:
        return progress
    progress["sittings"].append(model.num_timesteps)

    def policy(obs: Any) -> Any:
        return model.predict(obs, deterministic=True)[0]

    def save() -> None:
        # model and buffer first, the record last: a record never names a step its files have not reached
        model.save(folder / "model.tmp.zip")
        os.replace(folder / "model.tmp.zip", model_file)
        model.save_replay_buffer(folder / "replay.tmp.pkl")
        os.replace(folder / "replay.tmp.pkl", buffer_file)
        write_json_atomically(progress_file, progress)

    class Measure(BaseCallback):
        def _on_training_start(self) -> None:
            self.since = time.perf_counter()

        def _on_step(self) -> bool:
            step = self.num_timesteps
            if step % eval_every == 0 or step % save_every == 0 or Stop.requested or step >= steps:
                progress["train_seconds"] += time.perf_counter() - self.since
                if step % eval_every == 0:
                    result = evaluate(policy, eval_env, 10, evaluation_seed(seed))
                    progress["evals"].append({"step": step, "mean": result.mean, "std": result.std,
                                              "train_seconds": progress["train_seconds"]})
                    print(f"seed {seed}: step {step:>9,}  eval {result.mean:8.1f} ± {result.std:<6.1f}"
                          f"{step / progress['train_seconds']:6.0f} steps/s", flush=True)
                save()
                self.since = time.perf_counter()
            return not Stop.requested

    remaining = steps - model.num_timesteps
    if remaining > 0 and not Stop.requested:
        model.learn(total_timesteps=remaining, callback=Measure(), reset_num_timesteps=False)
    if model.num_timesteps >= steps:
        if reeval:
            result = evaluate(policy, eval_env, reeval, REEVAL_SEED)
            progress["reeval"] = {"episodes": reeval, "mean": result.mean, "std": result.std}
        progress["finished"] = True
        save()
    return progress


def curve_rows(records: list[dict[str, Any]], preset: str) -> list[dict[str, object]]:
    return [{"preset": preset, "seed": r["seed"], "step": e["step"], "eval_mean": e["mean"], "eval_std": e["std"],
             "train_seconds": e["train_seconds"], "wall_seconds": e["train_seconds"]}
            for r in records for e in r["evals"]]


def reeval_lines(records: list[dict[str, Any]], label: str) -> list[str]:
    done = [r for r in records if "reeval" in r]
    if not done:
        return []
    title = (f"{label}: each seed's final policy on {done[0]['reeval']['episodes']} fresh episodes, noise off "
             f"(reset(seed={REEVAL_SEED} + i), as ddpg-tui sweep --reeval)")
    return reeval_table(title, [(r["seed"], r["steps"], r["reeval"]["mean"], r["reeval"]["std"]) for r in done])


def write_results(records: list[dict[str, Any]], label: str, preset_name: str, title: str) -> None:
    finished = all(r["finished"] for r in records)
    for stale in RESULTS.glob(f"{label}-partial-*"):
        stale.unlink()
    if not finished:
        label += "-partial"
        title = "PARTIAL (rerun the same command to carry it on): " + title
    rows = curve_rows(records, preset_name)
    if not rows:
        return
    curve = RESULTS / f"{label}-curve.csv"
    with curve.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CURVE_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    lines = reeval_lines(records, label)
    if lines:
        (RESULTS / f"{label}-reeval.txt").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
    report(title, read_curve(curve)[1], load_preset(preset_name).solved_threshold, curve)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="bipedal-walker", help="whose env, budget and eval schedule to use")
    parser.add_argument("--algo", choices=ALGORITHMS, default="td3")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, help="override the preset's total_steps")
    parser.add_argument("--eval-every", type=int, help="override the preset's eval_every")
    parser.add_argument("--save-every", type=int, default=25_000, help="env steps between saves (default 25000)")
    parser.add_argument("--reeval", type=int, default=0, help="score each final policy on N fresh episodes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (ours run at 1 per trial)")
    parser.add_argument("--tag", help="suffix for the output files, to keep a variant apart")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    preset = load_preset(args.preset)
    steps = args.steps or preset.config.total_steps
    eval_every = args.eval_every or preset.config.eval_every
    label = f"sb3-{args.algo}-{args.preset}" + (f"-{args.tag}" if args.tag else "")
    title = (f"SB3 {args.algo.upper()} with rl-zoo's config on {preset.env_id} ({preset.name}'s budget, {steps:,} "
             f"steps), {plural(len(args.seeds), 'seed')}; eval: 10 episodes, noise off")
    Stop.install()
    RESULTS.mkdir(parents=True, exist_ok=True)
    records = []
    for seed in args.seeds:
        records.append(run_seed(args.algo, args.preset, seed, steps, eval_every, args.save_every, args.reeval,
                                STATE / f"{label}-seed{seed}"))
        if Stop.requested:
            break
    for seed in args.seeds[len(records):]:  # not started: counted so that the results say partial
        records.append({"seed": seed, "evals": [], "finished": False})
    write_results(records, label, args.preset, title)
    return 130 if Stop.requested else 0


if __name__ == "__main__":
    raise SystemExit(main())
