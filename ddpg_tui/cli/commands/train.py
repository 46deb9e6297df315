"""`ddpg-tui train`: in the app's dashboard, or headless with a progress bar."""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.config import DDPGConfig, validate_field
from ddpg_tui.cli.commands import int_option, require_terminal
from ddpg_tui.population import PopulationRequest
from ddpg_tui.request import TrainingRequest, UsageError
from presets import DEFAULT_PRESET, is_preset_file, load_preset, load_preset_file, preset_file_label

NAME = "train"
HELP = "train an agent (in the app, or --headless)"
DESCRIPTION = "Train a DDPG agent. Opens the dashboard unless --headless is given."
EXAMPLES = """\
examples:
  ddpg-tui train --preset pendulum              train in the app's dashboard
  ddpg-tui train --preset pendulum --headless   train with a progress bar only
  ddpg-tui train --preset runs/sweeps/lr-demo/best.toml --headless   a sweep's best config
  ddpg-tui train --preset pendulum --detach     train in the background; 'ddpg-tui attach' to watch
  ddpg-tui train --env MountainCarContinuous-v0 --set noise=ou --set noise_sigma=0.5 --headless
  ddpg-tui train --resume runs/pendulum-20261124-120000 --headless --steps 40000
  ddpg-tui train --preset pendulum --seeds 0-7   8 seeds as one population, in one process, in the dashboard
"""

# Without a terminal the app writes escape codes into the log and waits for a key that never comes.
NO_TERMINAL = "add --headless to train with plain progress lines"  # what works without a terminal


def epilog() -> str:
    return "hyperparameters (use with --set, values parsed as TOML):\n" + _hyperparameter_help()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # --preset and --env go together only for a preset file, whose env id the user may choose (see _config).
    parser.add_argument("--preset", metavar="NAME_OR_FILE",
                        help=f"a preset from 'ddpg-tui presets' (default: {DEFAULT_PRESET}), or a preset file "
                        "(FILE.toml, e.g. the best.toml a sweep writes)")
    parser.add_argument("--env", metavar="ENV_ID",
                        help="any Gymnasium env id with Box spaces, starting from default hyperparameters; "
                        "'pkg.module:Name-v0' imports pkg.module first. With --resume: the env to resume on, "
                        "instead of the one the checkpoint names. With a preset file: its env, instead of the "
                        "one the file names (a file's 'module:' id is refused unless you give it here)")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a run from its latest checkpoint (and replay buffer)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a hyperparameter, e.g. --set gamma=0.98 --set hidden_sizes=[400,300]")
    parser.add_argument("--steps", type=int_option, metavar="N", help="total environment steps (= --set total_steps=N)")
    parser.add_argument("--seed", type=int_option, metavar="S", help="random seed (= --set seed=S)")
    parser.add_argument("--seeds", metavar="SEEDS",
                        help="train these seeds as one population in one process (0-7, or 0,2,5): the members' "
                        "networks are updated in one batched step, several times faster than one after another "
                        "for small networks; each writes RUN_DIR/seed-K, an ordinary run folder. The dashboard "
                        "shows every seed's curve and their median with its interquartile band, and p, e, s and "
                        "q work on all seeds at once (or add --headless); the population uses threads=1 unless "
                        "--set threads=N")
    parser.add_argument("--run-dir", type=Path, metavar="DIR",
                        help="folder for config, metrics and checkpoints (default: runs/<preset>-<time>)")
    parser.add_argument("--headless", action="store_true", help="no app: a progress bar in this terminal")
    parser.add_argument("--detach", action="store_true",
                        help="train headless in a background process that outlives this terminal (output in the "
                        "run folder's train.log); prints the folder and how to attach, and returns")
    parser.add_argument("--no-buffer", action="store_true",
                         help="do not save the replay buffer with checkpoints (smaller, resume is not exact)")


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
            + EXAMPLES)


def run(args: argparse.Namespace) -> int:
    from agents.checkpoint import CheckpointError
    from agents.run_files import RunLockedError

    if args.resume and population_members(Path(args.resume)):
        from ddpg_tui.cli.population_run import resume_population_headless

        if args.detach:
            raise UsageError("a population does not run in the background yet; run it under tmux or nohup")
        if args.overrides or args.seed is not None or args.run_dir or args.preset or args.seeds or args.env:
            raise UsageError("--resume keeps the population's hyperparameters, seeds and folders; only --steps "
                             "may change")
        if args.steps is not None:
            validate_field("total_steps", args.steps)
        members = population_members(Path(args.resume))
        if not args.headless:
            return population_in_app(PopulationRequest(None, tuple(int(m.name[5:]) for m in members),
                                                       Path(args.resume), tuple(members), args.steps))
        return resume_population_headless(Path(args.resume), members, args.steps)
    seeds = population_seeds(args)
    try:
        request = resolve_training_request(args)
    except (CheckpointError, RunLockedError) as error:
        raise UsageError(str(error)) from None
    if seeds is not None:
        from ddpg_tui.cli.population_run import refuse_taken_members, run_population_headless

        try:
            refuse_taken_members(request.run_dir, seeds)
        except (UsageError, RunLockedError) as error:
            request.discard_unused_run_dir()
            raise UsageError(str(error)) from None
        if not args.headless:
            return population_in_app(PopulationRequest(request.config, seeds, request.run_dir,
                                                       claimed_run_dir=request.claimed_run_dir))
        return run_population_headless(request, seeds)
    if args.detach:
        from ddpg_tui.cli.detach import start_detached

        return start_detached(args, request)
    if not args.headless:
        require_terminal(NO_TERMINAL, request.discard_unused_run_dir)
        from ddpg_tui.ui.app import run_app

        return run_app(request)

    from ddpg_tui.cli.headless import run_headless

    return run_headless(request)


def population_in_app(request: PopulationRequest) -> int:
    """The population in the app's dashboard, trained in its worker thread as a single run is."""
    from agents.run_files import RunLockedError, refuse_if_locked

    require_terminal(NO_TERMINAL, request.discard_unused_run_dir)
    try:
        for member in request.members:  # before the screen opens: one line, as headless says it
            refuse_if_locked(member)
    except RunLockedError as error:
        raise UsageError(str(error)) from None
    from ddpg_tui.ui.app import run_app

    return run_app(request)


def population_members(folder: Path) -> list[Path]:
    """The member folders of a population (`train --seeds` writes FOLDER/seed-K), or [] for anything else."""
    if not folder.is_dir() or (folder / "config.toml").exists():
        return []
    members = [d for d in folder.glob("seed-*") if (d / "config.toml").exists() and d.name[5:].isdigit()]
    return sorted(members, key=lambda d: int(d.name[5:]))


def population_seeds(args: argparse.Namespace) -> tuple[int, ...] | None:
    """`--seeds`, checked: a population is a new run of one config, in the dashboard or headless."""
    if args.seeds is None:
        return None
    from ddpg_tui.sweeps.space import SweepSpaceError, parse_seeds

    if args.resume:
        raise UsageError("--seeds starts a new population; --resume RUN_DIR alone carries one on")
    if args.seed is not None:
        raise UsageError("--seeds and --seed: give one (--seeds 0-4 trains five seeds)")
    if args.detach:
        raise UsageError("--seeds does not run in the background yet; run it headless under tmux or nohup")
    try:
        seeds = parse_seeds(args.seeds)
    except SweepSpaceError as error:
        raise UsageError(str(error)) from None
    if len(seeds) < 2:
        raise UsageError(f"--seeds {args.seeds}: a population needs at least two seeds; for one, use --seed")
    return seeds


def resolve_training_request(args: argparse.Namespace) -> TrainingRequest:
    from agents.run_files import claim_run_dir, existing_run, refuse_if_locked

    save_buffer = not args.no_buffer
    if args.resume:
        from agents.checkpoint import resolve_checkpoint_path

        if args.overrides or args.seed is not None or args.run_dir or args.preset:
            raise UsageError("--resume keeps the run's hyperparameters, seed and folder; only --steps and --env "
                             "may change (live ones can be changed in the app with h)")
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise UsageError(f"--resume: {run_dir} is not a run folder")
        refuse_if_locked(run_dir)
        if args.steps is not None:
            validate_field("total_steps", args.steps)
        return TrainingRequest(None, run_dir, resolve_checkpoint_path(run_dir), args.steps, save_buffer,
                               env_id=args.env)
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"total_steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    config, label = _config(args.preset, args.env)
    config = config.with_overrides(overrides)
    if args.run_dir is not None:
        refuse_if_locked(args.run_dir)  # before "already holds a run": that run is live, not finished
        held = existing_run(args.run_dir)
        if held is not None:
            step, total = held
            reached = f"step {step:,} of {total:,}" if total is not None else f"step {step:,}"
            raise UsageError(f"{args.run_dir} already holds a run ({reached}); resume it with --resume "
                             f"{args.run_dir}, or choose another --run-dir")
        return TrainingRequest(config, args.run_dir, save_replay_buffer=save_buffer)

    try:
        run_dir = claim_run_dir(Path("runs"), label)
    except OSError as error:
        raise UsageError(f"cannot make a run folder under runs/ ({error.strerror or error}); "
                         "choose one with --run-dir") from None
    return TrainingRequest(config, run_dir, save_replay_buffer=save_buffer, claimed_run_dir=True)


def _config(preset: str | None, env_id: str | None) -> tuple[DDPGConfig, str]:
    """The config to start from and the run folder's prefix.

    A preset file is a file like a checkpoint: a `module:Env-v0` id in it would import that module, so
    it is refused unless the user names the env with --env (load_preset_file). A shipped preset is ours
    and names its own env, so --env beside it is a mistake."""
    if preset is not None and is_preset_file(preset):
        return load_preset_file(Path(preset), env_id).config, preset_file_label(Path(preset))
    if env_id:
        if preset is not None:
            raise UsageError(f"argument --env: not allowed with a preset name (preset {preset!r} names its env); "
                             "use --env alone, or with a preset file")
        return DDPGConfig(env_id=env_id), env_id
    chosen = load_preset(preset or DEFAULT_PRESET)
    return chosen.config, chosen.name
