"""`ddpg-tui eval`: a checkpoint's actor, noise off, averaged over episodes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ddpg_tui.request import EXIT_BAD_INPUT, EXIT_OK, UsageError

NAME = "eval"
HELP = "evaluate a checkpoint with noise off"
DESCRIPTION = "Run the checkpoint's actor deterministically and report the mean return."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pt file, or a run folder (its latest)")
    parser.add_argument("--episodes", type=int, default=10, metavar="N", help="episodes (default: 10)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                          help="env seed of the first episode; episode i uses S+i (default: 0)")
    parser.add_argument("--env", metavar="ENV_ID",
                          help="evaluate on this env instead of the one the checkpoint names (same dims and "
                          "action bounds); needed when that id would import a module")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise UsageError(f"--episodes: {args.episodes} is not allowed; expected an integer >= 1")
    from agents.checkpoint import CheckpointError
    from agents.envs import EnvError
    from agents.evaluation import evaluate_checkpoint

    try:
        result = evaluate_checkpoint(args.checkpoint, args.episodes, args.seed, env_id=args.env)
    except (CheckpointError, EnvError) as error:
        print(f"ddpg-tui: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    evaluation = result.evaluation
    if args.json:
        print(json.dumps({
            "checkpoint": str(result.path), "run_dir": str(_run_dir_of(result.path)),
            "env_id": result.env_id, "step": result.step,
            "episodes": len(evaluation.returns), "mean": evaluation.mean, "std": evaluation.std,
            "returns": list(evaluation.returns),
        }))
    else:
        print(f"{result.path}: {result.env_id} at step {result.step:,}: mean return {evaluation.mean:.1f} "
              f"± {evaluation.std:.1f} over {len(evaluation.returns)} episodes (noise off)")
    return EXIT_OK


def _run_dir_of(checkpoint: Path) -> Path:
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
