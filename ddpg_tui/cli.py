"""The `ddpg-tui` command.

With no subcommand it opens the app; `train`, `eval` and `presets` do the work without
it. Heavy modules (torch, gymnasium, textual) are imported only once a command needs
them, so `--help` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from agents.config import ConfigError, DDPGConfig, validate_field
from ddpg_tui.request import EXIT_BAD_INPUT, EXIT_OK, EXIT_SIGINT, TrainingRequest
from presets import DEFAULT_PRESET, PresetError, list_presets, load_preset

EPILOG = """\
examples:
  ddpg-tui                                      open the app on the preset list
  ddpg-tui train --preset pendulum              train in the app's dashboard
  ddpg-tui train --preset pendulum --headless   train with a progress bar only
  ddpg-tui train --env MountainCarContinuous-v0 --set noise=ou --set noise_sigma=0.5 --headless
  ddpg-tui train --resume runs/pendulum-20261124-120000 --headless
  ddpg-tui eval runs/pendulum-20261124-120000 --episodes 20
  ddpg-tui presets
"""


class UsageError(Exception):
    """Bad input: shown as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line instead of argparse's usage dump; --help has the details.
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ddpg-tui",
        description="Train and evaluate DDPG agents on continuous-control Gymnasium tasks. "
        "With no command, opens the interactive app.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser(
        "train", help="train an agent (in the app, or --headless)",
        description="Train a DDPG agent. Opens the dashboard unless --headless is given.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="hyperparameters (use with --set, values parsed as TOML):\n" + _hyperparameter_help(),
    )
    source = train.add_mutually_exclusive_group()
    source.add_argument("--preset", metavar="NAME",
                        help=f"a preset from 'ddpg-tui presets' (default: {DEFAULT_PRESET})")
    source.add_argument("--env", metavar="ENV_ID",
                        help="any Gymnasium env id with Box spaces, starting from default hyperparameters; "
                        "'pkg.module:Name-v0' imports pkg.module first. With --resume: the env to resume on, "
                        "instead of the one the checkpoint names")
    train.add_argument("--resume", metavar="RUN_DIR",
                       help="continue a run from its latest checkpoint (and replay buffer)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a hyperparameter, e.g. --set gamma=0.98 --set hidden_sizes=[400,300]")
    train.add_argument("--steps", type=int, metavar="N", help="total environment steps (= --set total_steps=N)")
    train.add_argument("--seed", type=int, metavar="S", help="random seed (= --set seed=S)")
    train.add_argument("--run-dir", type=Path, metavar="DIR",
                       help="folder for config, metrics and checkpoints (default: runs/<preset>-<time>)")
    train.add_argument("--headless", action="store_true", help="no app: a progress bar in this terminal")
    train.add_argument("--no-buffer", action="store_true",
                       help="do not save the replay buffer with checkpoints (smaller, resume is not exact)")

    evaluate = commands.add_parser(
        "eval", help="evaluate a checkpoint with noise off",
        description="Run the checkpoint's actor deterministically and report the mean return.",
    )
    evaluate.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pt file, or a run folder (its latest)")
    evaluate.add_argument("--episodes", type=int, default=10, metavar="N", help="episodes (default: 10)")
    evaluate.add_argument("--seed", type=int, default=0, metavar="S",
                          help="env seed of the first episode; episode i uses S+i (default: 0)")
    evaluate.add_argument("--env", metavar="ENV_ID",
                          help="evaluate on this env instead of the one the checkpoint names (same dims and "
                          "action bounds); needed when that id would import a module")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")

    commands.add_parser("presets", help="list the environment presets",
                        description="List the shipped presets with their env ids and solved thresholds.")
    return parser


def _hyperparameter_help() -> str:
    from agents.config import FIELDS

    library = DDPGConfig()
    preset = load_preset(DEFAULT_PRESET)

    def shown(value: object) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        return str(list(value)) if isinstance(value, tuple) else str(value)

    rows = []
    for name, spec in FIELDS.items():
        ours, base = getattr(preset.config, name), getattr(library, name)
        default = f"default {shown(ours)}" if ours == base else \
            f"{DEFAULT_PRESET} preset: {shown(ours)}; with --env: {shown(base)}"
        live = " [live]" if spec.live else ""
        rows.append(f"  {name:<18} {spec.help}; {spec.allowed()} ({default}){live}")
    return (f"Defaults: plain 'ddpg-tui train' uses the {DEFAULT_PRESET} preset; --preset NAME uses that preset's "
            "values (see presets/NAME.toml);\n--env ID starts from the library defaults, shown where they differ.\n\n"
            + "\n".join(rows) + "\n\n[live]: can also be changed while training runs (key h in the app)\n\n"
            + EPILOG)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            return _run_app(None)
        if args.command == "presets":
            return _cmd_presets()
        if args.command == "eval":
            return _cmd_eval(args)
        return _cmd_train(args)
    except UsageError as error:
        print(f"ddpg-tui: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ConfigError, PresetError) as error:
        print(f"ddpg-tui: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("ddpg-tui: interrupted", file=sys.stderr)
        return EXIT_SIGINT


# Commands -----------------------------------------------------------------------------


def _cmd_presets() -> int:
    presets = [load_preset(name) for name in list_presets()]
    rows = [(p.name, p.env_id, f"{p.config.total_steps:,}",
             "" if p.solved_threshold is None else f"{p.solved_threshold:g}",
             p.install_hint or (f"{p.extra} extra: installed" if p.extra else "")) for p in presets]
    header = ("preset", "env id", "total steps", "solved at", "needs")
    if not sys.stdout.isatty():
        # Piped or in a log: plain aligned columns, nothing cut, nothing to render.
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        return EXIT_OK
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="ddpg-tui presets")
    table.add_column("preset", no_wrap=True)  # the name you type: never cut
    for column in header[1:]:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    Console().print(table)
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace) -> int:
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


def resolve_training_request(args: argparse.Namespace) -> TrainingRequest:
    save_buffer = not args.no_buffer
    if args.resume:
        from agents.checkpoint import resolve_checkpoint_path

        if args.overrides or args.seed is not None or args.run_dir or args.preset:
            raise UsageError("--resume keeps the run's hyperparameters, seed and folder; only --steps and --env "
                             "may change (live ones can be changed in the app with h)")
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise UsageError(f"--resume: {run_dir} is not a run folder")
        if args.steps is not None:
            validate_field("total_steps", args.steps)
        return TrainingRequest(None, run_dir, resolve_checkpoint_path(run_dir), args.steps, save_buffer,
                               env_id=args.env)
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"total_steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.env:
        config, label = DDPGConfig(env_id=args.env).with_overrides(overrides), args.env
    else:
        preset = load_preset(args.preset or DEFAULT_PRESET)
        config, label = preset.config.with_overrides(overrides), preset.name
    if args.run_dir is not None:
        return TrainingRequest(config, args.run_dir, save_replay_buffer=save_buffer)
    from agents.run_files import claim_run_dir

    try:
        run_dir = claim_run_dir(Path("runs"), label)
    except OSError as error:
        raise UsageError(f"cannot make a run folder under runs/ ({error.strerror or error}); "
                         "choose one with --run-dir") from None
    return TrainingRequest(config, run_dir, save_replay_buffer=save_buffer, claimed_run_dir=True)


def _cmd_train(args: argparse.Namespace) -> int:
    from agents.checkpoint import CheckpointError

    try:
        request = resolve_training_request(args)
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    if not args.headless:
        return _run_app(request)

    from ddpg_tui.headless import run_headless

    return run_headless(request)


def _run_app(request: TrainingRequest | None) -> int:
    from ddpg_tui.app import run_app

    return run_app(request)


if __name__ == "__main__":
    raise SystemExit(main())
