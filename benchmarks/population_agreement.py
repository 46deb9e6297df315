"""Does a population learn what its seeds learn alone? Final evaluations of N seeds both ways.

    python benchmarks/population_agreement.py [--preset pendulum] [--seeds 0-7] [--steps 10000] [--resume]

Each member of a population makes its standalone run's updates to within float rounding
(tests/test_population.py checks a few hundred); over a whole run those rounding differences
grow, as any change of thread count or library version makes them grow, so two runs of one
seed end at different returns. What must hold is the statistics: the population's final
evaluations, over N seeds, agree with N standalone runs' within their spread. This trains
both (the preset's config, `--steps` steps, one torch thread) and prints each seed's final
evaluation both ways, the two medians and interquartile ranges, and whether each median
lies inside the other side's interquartile range.

Every finished run is appended to benchmarks/results/population-agreement.jsonl at once;
`--resume` skips what is there, so a cut session loses at most the run it was in. Not a
timing: nothing here depends on the machine being quiet.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from agents.config import DDPGConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "population-agreement.jsonl"


def bench_config(preset: str, steps: int) -> DDPGConfig:  # imported late: --help stays fast
    from presets import load_preset

    return load_preset(preset).config.replace(total_steps=steps, threads=1, save_every=0, device="cpu")


def standalone(preset: str, seed: int, steps: int) -> float:
    from agents.trainer import Trainer

    outcome = Trainer(bench_config(preset, steps).replace(seed=seed), None, None, front_end="headless").run()
    assert outcome.last_eval is not None
    return outcome.last_eval.mean


def population(preset: str, seeds: list[int], steps: int) -> list[float]:
    from agents.population import PopulationTrainer

    outcome = PopulationTrainer(bench_config(preset, steps), seeds).run()
    return [ev.mean for ev in outcome.last_evals if ev is not None]


def done_rows(preset: str, steps: int) -> list[dict]:
    if not RESULTS.exists():
        return []
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["preset"] == preset and r["steps"] == steps]


def append(row: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")


def report(preset: str, seeds: list[int], steps: int) -> None:
    rows = done_rows(preset, steps)
    alone = {r["seed"]: r["final_eval"] for r in rows if r["kind"] == "standalone"}
    pop = {r["seed"]: r["final_eval"] for r in rows if r["kind"] == "population"}
    print(f"\n{preset}, {steps:,} steps, final evaluation (mean return over the preset's eval episodes)")
    print("| seed | standalone | population member |\n|---|---|---|")
    for seed in seeds:
        print(f"| {seed} | {alone.get(seed, float('nan')):.1f} | {pop.get(seed, float('nan')):.1f} |")
    if len(alone) < 2 or len(pop) < 2:
        print("(partial: not enough runs yet for the statistics)")
        return
    a, p = np.array(list(alone.values())), np.array(list(pop.values()))
    qa, qp = np.percentile(a, [25, 50, 75]), np.percentile(p, [25, 50, 75])
    print(f"\nstandalone: median {qa[1]:.1f}, IQR {qa[0]:.1f} to {qa[2]:.1f} over {len(a)} seeds")
    print(f"population: median {qp[1]:.1f}, IQR {qp[0]:.1f} to {qp[2]:.1f} over {len(p)} seeds")
    inside = qa[0] <= qp[1] <= qa[2] and qp[0] <= qa[1] <= qp[2]
    print(f"each median inside the other's IQR: {'yes' if inside else 'NO'}"
          + ("" if len(a) == len(p) == len(seeds) else " (partial)"))


def main() -> None:
    from ddpg_tui.sweeps.space import parse_seeds

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="pendulum")
    parser.add_argument("--seeds", default="0-7")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--resume", action="store_true", help="skip the runs already in the results file")
    args = parser.parse_args()
    seeds = list(parse_seeds(args.seeds))
    if not args.resume and done_rows(args.preset, args.steps):
        sys.exit(f"{RESULTS} already has {args.preset} at {args.steps} steps; add --resume to go on")
    done = {(r["kind"], r["seed"]) for r in done_rows(args.preset, args.steps)}
    if not all(("population", s) in done for s in seeds):
        for seed, final in zip(seeds, population(args.preset, seeds, args.steps), strict=True):
            append({"preset": args.preset, "steps": args.steps, "kind": "population", "seed": seed,
                    "final_eval": final})
        print(f"population of {len(seeds)} done", flush=True)
    for seed in seeds:
        if ("standalone", seed) not in done:
            final = standalone(args.preset, seed, args.steps)
            append({"preset": args.preset, "steps": args.steps, "kind": "standalone", "seed": seed,
                    "final_eval": final})
            print(f"standalone seed {seed}: {final:.1f}", flush=True)
    report(args.preset, seeds, args.steps)


if __name__ == "__main__":
    main()
