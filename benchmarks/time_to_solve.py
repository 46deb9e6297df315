"""Time-to-solve, side by side: a preset against SB3 DDPG with rl-baselines3-zoo's config for the same env.

    pip install stable-baselines3          # the `bench` extra
    python benchmarks/time_to_solve.py --preset pendulum --seeds 0 1 2
    python benchmarks/time_to_solve.py --preset mountain-car-continuous --seeds 0 1 2
    python benchmarks/time_to_solve.py --preset lunar-lander-continuous --seeds 0 1 2 --sb3-seeds 0

    # a long pair, one side per core (taskset keeps them off each other's core):
    taskset -c 1 python benchmarks/time_to_solve.py --preset lunar-lander-continuous --sb3-seeds \
        --out benchmarks/results/time-to-solve-lunar-lander-continuous-ours.txt
    taskset -c 0 python benchmarks/time_to_solve.py --preset lunar-lander-continuous --seeds --sb3-seeds 0 \
        --out benchmarks/results/time-to-solve-lunar-lander-continuous-sb3.txt

Time-to-solve is training wall seconds (evaluations excluded) until the first periodic evaluation
reaches the preset's solved threshold. Both sides evaluate on the same schedule (every
`--eval-every` env steps, 10 episodes, noise off, episode i from reset(seed=10000 + i)), each run
is its own process with the same torch thread count, and the two sides alternate seed by seed.
A side that has not solved by `--max-steps` counts as not solved. Results go to
benchmarks/results/time-to-solve-<preset>.txt as they come, so a long run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EVAL_SEED = 10_000

PROGRESS = "progress "  # a worker's stderr line that reports an evaluation, for a long run to show


def report_progress(step: int, mean: float, seconds: float) -> None:
    print(PROGRESS + json.dumps({"step": step, "eval": mean, "seconds": seconds}), file=sys.stderr, flush=True)


DEFAULT_EVAL_EVERY = {"pendulum": 1000, "mountain-car-continuous": 5000, "lunar-lander-continuous": 10_000}
DEFAULT_MAX_STEPS = {"pendulum": 30_000, "mountain-car-continuous": 300_000, "lunar-lander-continuous": 300_000}


def worker_ours(preset: str, seed: int, threads: int, eval_every: int, max_steps: int) -> dict[str, Any]:
    from agents.events import EvalResult
    from agents.trainer import Trainer
    from presets import load_preset

    loaded = load_preset(preset)
    config = loaded.config.replace(seed=seed, eval_every=eval_every, eval_episodes=10, threads=threads,
                                   total_steps=max(loaded.config.total_steps, max_steps), save_every=0)
    solved: dict[str, Any] = {}
    trainer: Trainer

    def sink(event: object) -> None:
        if isinstance(event, EvalResult):
            report_progress(event.step, event.mean, trainer.clock.elapsed)
        if isinstance(event, EvalResult) and event.mean >= loaded.solved_threshold and not solved:
            # The trainer's clock excludes evaluations; it stopped when this evaluation began.
            solved.update(seconds=trainer.clock.elapsed, step=event.step, eval=event.mean)
            trainer.controls.stop(save=False)
        elif isinstance(event, EvalResult) and event.step >= max_steps:
            trainer.controls.stop(save=False)

    trainer = Trainer(config, sink)
    trainer.run()
    return solved or {"seconds": None, "step": None, "eval": None}


def worker_sb3(preset: str, seed: int, threads: int, eval_every: int, max_steps: int) -> dict[str, Any]:
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from zoo import zoo_model  # a sibling: benchmarks/ is sys.path[0] when run as a script

    from presets import load_preset

    torch.set_num_threads(threads)
    loaded = load_preset(preset)
    env, eval_env = gym.make(loaded.env_id), gym.make(loaded.env_id)
    model = zoo_model("ddpg", loaded.env_id, env, seed)
    state: dict[str, Any] = {"train": 0.0, "since": None, "solved": None}

    class Evaluate(BaseCallback):
        def _on_training_start(self) -> None:
            state["since"] = time.perf_counter()

        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every:
                return True
            state["train"] += time.perf_counter() - state["since"]
            returns = []
            for i in range(10):
                obs, _ = eval_env.reset(seed=EVAL_SEED + i)
                done, total = False, 0.0
                while not done:
                    action, _ = model.predict(obs, deterministic=True)
                    obs, reward, terminated, truncated, _ = eval_env.step(action)
                    total += float(reward)
                    done = terminated or truncated
                returns.append(total)
            state["since"] = time.perf_counter()
            report_progress(self.num_timesteps, float(np.mean(returns)), state["train"])
            if np.mean(returns) >= loaded.solved_threshold:
                state["solved"] = {"seconds": state["train"], "step": self.num_timesteps,
                                   "eval": float(np.mean(returns))}
                return False
            return True

    model.learn(total_timesteps=max_steps, callback=Evaluate())
    return state["solved"] or {"seconds": None, "step": None, "eval": None}


WORKERS = {"ours": worker_ours, "sb3": worker_sb3}


def spawn(name: str, on_progress: Callable[[dict[str, Any]], None], **kwargs: Any) -> dict[str, Any]:
    worker = subprocess.Popen([sys.executable, __file__, "--worker", name, "--args", json.dumps(kwargs)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert worker.stdout is not None and worker.stderr is not None
    errors: list[str] = []
    for line in worker.stderr:  # the worker prints only its result on stdout, so that pipe cannot fill
        if line.startswith(PROGRESS):
            on_progress(json.loads(line.removeprefix(PROGRESS)))
        else:
            errors.append(line)
    output = worker.stdout.read()
    if worker.wait() != 0:
        raise RuntimeError(f"{name} failed:\n{''.join(errors)[-2000:]}")
    return json.loads(output.strip().splitlines()[-1])


def shown(result: dict[str, Any]) -> str:
    if result["seconds"] is None:
        return "not solved"
    return f"{result['seconds']:7.1f} s at step {result['step']:,} (eval {result['eval']:.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--args", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--preset", default="pendulum", choices=sorted(DEFAULT_EVAL_EVERY))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="our seeds (none: SB3 only)")
    parser.add_argument("--sb3-seeds", type=int, nargs="*", help="SB3's seeds (default: the same as ours)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, the same for both sides")
    parser.add_argument("--eval-every", type=int)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--out", type=Path,
                        help="results file (default: benchmarks/results/time-to-solve-<preset>.txt); "
                        "name one per side when the two sides run at once, one per core")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](**json.loads(args.args))))
        return 0

    common = {"preset": args.preset, "threads": args.threads,
              "eval_every": args.eval_every or DEFAULT_EVAL_EVERY[args.preset],
              "max_steps": args.max_steps or DEFAULT_MAX_STEPS[args.preset]}
    sb3_seeds = args.seeds if args.sb3_seeds is None else args.sb3_seeds
    out = args.out or ROOT / "benchmarks" / "results" / f"time-to-solve-{args.preset}.txt"
    lines = [f"time-to-solve {args.preset}: training seconds to the first eval >= threshold; eval every "
             f"{common['eval_every']:,} steps (10 episodes); {args.threads} torch thread(s); {os.cpu_count()} cores; "
             f"{time.strftime('%Y-%m-%d')}"]

    def note(line: str) -> None:
        lines.append(line)
        print(line, flush=True)
        out.write_text("\n".join(lines) + "\n")  # as it goes: a cut-short run keeps its seeds

    def progress_of(seed: int, side: str) -> Callable[[dict[str, Any]], None]:
        def show(latest: dict[str, Any]) -> None:
            # Replaced by the next evaluation and by the result, so a run cut short says how far it got.
            line = (f"  seed {seed}: {side:<10} in progress: last eval {latest['eval']:.0f} at step {latest['step']:,} "
                    f"after {latest['seconds']:.1f} s of training")
            print(line, flush=True)
            out.write_text("\n".join([*lines, line]) + "\n")
        return show

    note(lines.pop())
    results: dict[str, list[dict[str, Any]]] = {"ours": [], "sb3": []}
    for seed in sorted(set(args.seeds) | set(sb3_seeds)):
        if seed in args.seeds:
            results["ours"].append(spawn("ours", progress_of(seed, "ours"), seed=seed, **common))
            note(f"  seed {seed}: ours       {shown(results['ours'][-1])}")
        if seed in sb3_seeds:
            results["sb3"].append(spawn("sb3", progress_of(seed, "SB3 + zoo"), seed=seed, **common))
            note(f"  seed {seed}: SB3 + zoo  {shown(results['sb3'][-1])}")
    medians: dict[str, float | None] = {}
    for name, runs in results.items():
        if not runs:
            continue
        seconds = [r["seconds"] for r in runs if r["seconds"] is not None]
        medians[name] = statistics.median(seconds) if runs and len(seconds) == len(runs) else None
        note(f"  {name:<5} median " + ("not every seed solved" if medians[name] is None else f"{medians[name]:.1f} s"))
    if medians.get("ours") and medians.get("sb3"):
        note(f"  ratio ours / SB3+zoo: {medians['ours'] / medians['sb3']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
