"""`ddpg-tui sweep`: configs × seeds on Ray Tune, in the sweep screen or as a live table (--headless).

Everything the command line can get wrong is checked here before Ray, torch or Textual
load, so a typo answers at once in one line. The sweep itself lives in `ddpg_tui/sweeps/`
(the request and its checks shared with the app's form: `ddpg_tui/sweeps/request.py`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from agents.config import DDPGConfig
from ddpg_tui.cli.commands import int_option, require_terminal
from ddpg_tui.request import EXIT_FAILED, EXIT_OK, EXIT_SIGHUP, EXIT_SIGINT, EXIT_SIGTERM, UsageError, plural
from ddpg_tui.sweeps.request import SweepRequest, new_sweep_request, start_sweep
from ddpg_tui.ui import lifecycle
from presets import DEFAULT_PRESET, load_preset

if TYPE_CHECKING:
    from ddpg_tui.sweeps.board import SweepSnapshot
    from ddpg_tui.sweeps.driver import SweepResult, SweepRun

NAME = "sweep"
HELP = "train configs × seeds on Ray Tune and rank the configs"
DESCRIPTION = ("Does a change help, across seeds? Train every config of a grid (or random samples) on every seed, "
               "each seed an ordinary run folder under runs/sweeps/NAME/<config>/, one Ray Tune trial per config "
               "(its seeds in turn, or with --seeds-together as one population), on this machine or a cluster; "
               "then rank the configs by the median over seeds at equal steps (summary.md, summary.csv). "
               "Opens the sweep screen unless --headless.")
EXAMPLES = """\
examples:
  ddpg-tui sweep --preset lunar-lander-continuous --seeds 0-4 \\
      --grid actor_lr=1e-3,3e-4 --grid lr_schedule=constant,linear --headless
  ddpg-tui sweep --preset pendulum --seeds 0-2 --sample critic_lr=loguniform(1e-4,1e-2) --samples 8
  ddpg-tui sweep --preset pendulum --seeds 0-2 --sample tau=loguniform(1e-3,5e-2) --samples 8 \\
      --search tpe --scheduler asha
  ddpg-tui sweep --preset pendulum --grid tau=0.005,0.02 --scheduler asha --reeval 100
  ddpg-tui sweep --preset pendulum --grid gamma=0.98,0.99 --address auto    (join a running Ray cluster)
  ddpg-tui sweep --resume runs/sweeps/pendulum-20261126-120000                 (finished configs are kept)

keys in the sweep screen: s stop the selected row's config (all its seeds save), S stop the sweep (every seed
saves; carry on with --resume), enter the selected seed's curves, q quit (stops the sweep first)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", metavar="NAME",
                        help=f"the preset every trial starts from (default: {DEFAULT_PRESET})")
    source.add_argument("--env", metavar="ENV_ID", help="any Gymnasium env id with Box spaces, from the defaults; "
                        "with --resume, replaces the env id of sweep.json (which may not name a module:)")
    parser.add_argument("--seeds", default="0-2", metavar="SEEDS",
                        help="seeds of every config: a range 0-4 or a list 0,2,7 (default: 0-2)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="values of one hyperparameter; every key's values are crossed with every other's "
                        "and with the seeds, e.g. --grid actor_lr=1e-3,3e-4")
    parser.add_argument("--sample", action="append", default=[], metavar="KEY=DIST(A,B)",
                        help="draw a hyperparameter at random: uniform(a,b), loguniform(a,b), randint(a,b), "
                        "lograndint(a,b) (both bounds included) or choice(x,y,...)")
    parser.add_argument("--samples", type=int_option, metavar="N",
                        help="configs to draw with --sample, or for --search tpe to propose (default: 4)")
    parser.add_argument("--sample-seed", type=int_option, default=0, metavar="S",
                        help="seed of the draw (or of TPE), so the same command draws the same configs (default: 0)")
    parser.add_argument("--search", choices=("random", "tpe"), default=None,
                        help="how --sample's space is searched: random draws every config before the sweep starts "
                        "(default); tpe is Optuna's TPE, proposing each config from the median over its seeds of "
                        "those that ended before it (not with --grid). With --jobs 1 the same command proposes the "
                        "same configs in the same order; with trials running at once, TPE's proposals depend on "
                        "which trials end first, and a resume keeps the first run's trials at once"),
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a hyperparameter in every trial, as in 'ddpg-tui train'")
    parser.add_argument("--steps", type=int_option, metavar="N",
                        help="environment steps per trial (= --set total_steps=N)")
    parser.add_argument("--jobs", type=int_option, metavar="J",
                        help="CPUs to use (default: every core here, or the whole cluster with --address); "
                        "torch threads per trial = CPUs / trials at once, at most 4 (--set threads=N asks for N). "
                        "A resume may change it, except on a "
                        "cluster joined with --address, where Ray Tune keeps the first run's trials at once")
    parser.add_argument("--address", metavar="ADDR",
                        help="join a running Ray cluster: auto or HOST:PORT, not a ray:// client address "
                        "(default: start a quiet local Ray on this machine). Trial folders must be on storage "
                        "every node shares; before any trial, each node is checked for it and for the same versions "
                        "of ddpg-tui, torch, gymnasium and Ray, and gets this checkout's code")
    parser.add_argument("--gpus-per-trial", type=float, metavar="G",
                        help="GPUs each trial asks Ray for, a fraction shares one (e.g. 0.25); with device cuda or "
                        "auto on a cluster that has GPUs (default: 1 there). Without GPUs, trials train on cpu")
    parser.add_argument("--scheduler", choices=("asha",),
                        help="asha: stop configs whose median evaluation over their seeds is hopeless early, all "
                        "their seeds together (default: run all to the end)")
    parser.add_argument("--seeds-together", action="store_true",
                        help="train each config's seeds as one population in its trial (networks stacked, one "
                        "batched update; as train --seeds) instead of in turns; same folders, ranking and ASHA. "
                        "Measured on a quiet machine: 2.7x the env-steps/s of turns on pendulum's 64x64 with 8 "
                        "seeds, 1.18x on lunar-lander's 256x256 with 4 (benchmarks/README.md). Its seeds are not "
                        "bit-identical to train --seed k's runs (batched float rounding). CPU only")
    parser.add_argument("--name", metavar="NAME", help="the sweep's folder under runs/sweeps/ (default: preset-time)")
    parser.add_argument("--reeval", type=int_option, default=None, metavar="N",
                        help="at the end, evaluate every seed that holds a checkpoint on N fresh episodes, stopped "
                        "configs included (the summary says which were stopped), e.g. --reeval 100")
    parser.add_argument("--headless", action="store_true", help="no app: a live table in this terminal")
    parser.add_argument("--resume", metavar="SWEEP_DIR",
                        help="carry on an interrupted sweep; its finished configs are not redone. Ray Tune's "
                        "state in the folder is checked against this user's signature first, since Tune "
                        "unpickles it")
    parser.add_argument("--trust-folder", action="store_true",
                        help="with --resume: resume even if Tune's state is unsigned or does not match its signature "
                        "(it can run code; only for a folder you trust)")


def resolve_sweep_request(args: argparse.Namespace, root: Path = Path("runs") / "sweeps") -> SweepRequest:
    """Every check that needs no Ray: UsageError, ConfigError or PresetError, each one line."""
    from ddpg_tui.sweeps.cluster import address_endpoint
    from ddpg_tui.sweeps.space import check_disjoint, parse_grid, parse_sample, parse_seeds
    from ddpg_tui.sweeps.spec import SweepError

    if args.address is not None:
        try:
            address_endpoint(args.address)
        except SweepError as error:
            raise UsageError(str(error)) from None

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs: {args.jobs} is not allowed; expected an integer >= 1")
    if args.gpus_per_trial is not None and not args.gpus_per_trial > 0:
        raise UsageError(f"--gpus-per-trial: {args.gpus_per_trial:g} is not allowed; expected a number > 0 "
                         "(a fraction shares a GPU, e.g. 0.25)")
    if args.reeval is not None and args.reeval < 0:
        raise UsageError(f"--reeval: {args.reeval} is not allowed; expected a number of episodes >= 0")
    if args.resume:
        given = [flag for flag, value in (("--preset", args.preset), ("--grid", args.grid),
                                          ("--sample", args.sample), ("--set", args.overrides),
                                          ("--steps", args.steps), ("--name", args.name),
                                          ("--scheduler", args.scheduler), ("--samples", args.samples),
                                          ("--search", args.search),
                                          ("--seeds-together", args.seeds_together)) if value]
        if given:
            raise UsageError(f"--resume keeps the sweep's configs, seeds and settings; {given[0]} cannot change "
                             "(only --env, --jobs, --address, --gpus-per-trial, --reeval, --trust-folder and "
                             "--headless may)")
        from ddpg_tui.sweeps.spec import SPEC_FILE

        sweep_dir = Path(args.resume)
        if not (sweep_dir / SPEC_FILE).is_file():
            raise UsageError(f"--resume: {sweep_dir} is not a sweep folder (it has no {SPEC_FILE})")
        return SweepRequest(None, sweep_dir, True, args.jobs, args.address, args.headless, args.reeval,
                            env_id=args.env, trust_folder=args.trust_folder, gpus_per_trial=args.gpus_per_trial)
    if args.trust_folder:
        raise UsageError("--trust-folder goes with --resume: a new sweep has no state to check")

    seeds = parse_seeds(args.seeds)
    grid: dict[str, tuple[Any, ...]] = {}
    for text in args.grid:
        key, values = parse_grid(text)
        if key in grid:
            raise UsageError(f"--grid {key} is given twice; put all its values in one --grid {key}=a,b")
        grid[key] = values
    samples = tuple(parse_sample(text) for text in args.sample)
    if args.samples is not None and not samples:
        raise UsageError("--samples needs at least one --sample KEY=DIST(A,B) to draw from")
    if args.samples is not None and args.samples < 1:
        raise UsageError(f"--samples: {args.samples} is not allowed; expected an integer >= 1")
    sample_count = (args.samples or 4) if samples else 0
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"total_steps={args.steps}")
    fixed = [text.partition("=")[0].strip() for text in args.overrides]
    check_disjoint(grid, samples, fixed)
    if "seed" in fixed:
        raise UsageError("--set seed: a sweep runs every config on each of --seeds; use --seeds instead")
    if args.env:
        base, label, threshold = DDPGConfig(env_id=args.env).with_overrides(overrides), args.env, None
    else:
        preset = load_preset(args.preset or DEFAULT_PRESET)
        base, label, threshold = preset.config.with_overrides(overrides), preset.name, preset.solved_threshold
    return new_sweep_request(base, label, threshold, seeds, grid, samples=samples, sample_count=sample_count,
                             sample_seed=args.sample_seed, scheduler=args.scheduler, name=args.name,
                             jobs=args.jobs, address=args.address, headless=args.headless, reeval=args.reeval,
                             root=root, gpus_per_trial=args.gpus_per_trial, search=args.search or "random",
                             seeds_together=args.seeds_together)


def run(args: argparse.Namespace) -> int:
    request = resolve_sweep_request(args)
    if not request.headless:
        require_terminal("add --headless for a live table of the trials instead")
    run_ = start_sweep(request)
    try:
        if request.headless:
            return run_headless_sweep(run_)
        from ddpg_tui.ui.screens.sweep import run_sweep_app

        return run_sweep_app(run_, train=train_preset_file)
    finally:
        run_.close()


def train_preset_file(path: Path) -> int:
    """b on the finished sweep's screen: train its best.toml in the app's dashboard, as `train --preset` would."""
    from agents.run_files import claim_run_dir
    from ddpg_tui.request import TrainingRequest
    from ddpg_tui.ui.app import run_app
    from presets import load_preset_file, preset_file_label

    config = load_preset_file(path).config
    return run_app(TrainingRequest(config, claim_run_dir(Path("runs"), preset_file_label(path)), claimed_run_dir=True))


# Headless: a rich live table -------------------------------------------------------------------------


def trial_table(snapshot: SweepSnapshot, max_rows: int | None = None) -> Any:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column, justify in (("config", "left"), ("seed", "right"), ("state", "left"), ("step / total", "right"),
                            ("last eval", "right"), ("best eval", "right"), ("steps/s", "right")):
        table.add_column(column, justify=justify, no_wrap=True, overflow="ellipsis")
    rows = snapshot.trials
    shown = rows if max_rows is None or len(rows) <= max_rows else rows[:max_rows]
    for row in shown:
        table.add_row(row.variant, str(row.seed), row.state, f"{row.step:,} / {row.total_steps:,}",
                      _eval(row.eval_mean, row.eval_std), _eval(row.best_eval), f"{row.steps_per_second:,.0f}"
                      if row.steps_per_second and not row.done else "")
    if len(shown) < len(rows):
        table.add_row(f"… {len(rows) - len(shown)} more", "", "", "", "", "", "")
    return table


def _eval(mean: float, std: float | None = None) -> str:
    if mean != mean:  # nan: no evaluation yet
        return "-"
    return f"{mean:,.1f}" + (f" ± {std:,.0f}" if std is not None and std == std else "")


def headline(snapshot: SweepSnapshot) -> str:
    counts = snapshot.counts()
    done = sum(counts.get(s, 0) for s in ("finished", "stopped", "early-stopped", "error"))
    minutes, seconds = divmod(int(snapshot.elapsed), 60)
    total = max(len(snapshot.trials), snapshot.expected_runs)  # TPE's configs appear only as they are proposed
    text = (f"sweep {snapshot.name}: {snapshot.state}, {done}/{total} trials done, "
            f"{minutes}:{seconds:02d}")
    return text + (f" ({snapshot.message})" if snapshot.message else "")


def run_headless_sweep(run_: SweepRun) -> int:
    """The sweep in this terminal: a live table (or plain lines when piped), then the summary.

    The first Ctrl+C (or SIGTERM, or SIGHUP when the terminal closes) stops the sweep with every
    running trial saving first; a second one stops it at once. Either way, `sweep --resume`
    carries it on.
    """
    from rich.console import Console
    from rich.live import Live

    console = Console(highlight=False)
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # A closed terminal: what is still printed goes nowhere; the files say what happened.
        lifecycle.on_signal_received(signum)
        received.append(signum)
        if len(received) == 1:
            run_.stop_sweep()  # before any output, which a dead terminal would fail
            lifecycle.end_after(lambda: False, lifecycle.exit_code(signum), bound=lifecycle.SWEEP_STOP_BOUND)
            lifecycle.say(lambda text: console.print(text, soft_wrap=True),
                          "stopping: each running trial saves a checkpoint first (Ctrl+C again to stop at once)")
        else:
            run_.abort()

    outcome: list[SweepResult] = []
    worker = threading.Thread(target=lambda: outcome.append(run_.fit()), name="sweep-driver", daemon=True)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    console.print(f"sweep {run_.spec.name}: {plural(run_.spec.config_count, 'config')} × "
                  f"{plural(len(run_.spec.seeds), 'seed')}, one trial per config "
                  f"({'its seeds as one population' if run_.spec.seeds_together else 'its seeds in turn'}), "
                  f"{run_.per_trial} CPU(s) and torch thread(s) each, up to {run_.concurrent} at once "
                  f"on {run_.cluster.nodes} node(s) → {run_.sweep_dir}",
                  soft_wrap=True)
    try:
        worker.start()
        if console.is_terminal:
            with Live(console=console, refresh_per_second=2, transient=False) as live:
                while worker.is_alive():
                    live.update(_live_view(run_.board.snapshot(), console.height))
                    worker.join(0.5)
                live.update(_live_view(run_.board.snapshot(), console.height))
        else:
            _plain_progress(run_, worker, console)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    result = outcome[0] if outcome else None
    if result is None:
        print("ddpg-tui: error: the sweep's driver ended without a result", file=sys.stderr)
        return EXIT_FAILED
    console.print(result.markdown, markup=False, soft_wrap=True)
    console.print(f"summary: {result.summary_md}, {result.summary_csv}", soft_wrap=True)
    if result.message:
        console.print(result.message, markup=False, soft_wrap=True)
    if result.state == "error":
        return EXIT_FAILED
    if received:
        return {signal.SIGTERM: EXIT_SIGTERM, signal.SIGHUP: EXIT_SIGHUP}.get(received[0], EXIT_SIGINT)
    return EXIT_OK


def _live_view(snapshot: SweepSnapshot, height: int) -> Any:
    from rich.console import Group

    from ddpg_tui.sweeps.board import standings_text

    ranking = standings_text(snapshot)
    return Group(headline(snapshot), trial_table(snapshot, max_rows=max(3, height - 6 - len(ranking))), *ranking)


def _plain_progress(run_: SweepRun, worker: threading.Thread, console: Any) -> None:
    """Piped output cannot redraw a table: one line per trial state change and per evaluation."""
    seen: dict[str, tuple[str, int]] = {}
    while True:
        alive = worker.is_alive()  # read before the snapshot, so the last states are always printed
        snapshot = run_.board.snapshot()
        for row in snapshot.trials:
            key = (row.state, row.eval_step)
            if seen.get(row.name) != key:
                seen[row.name] = key
                if row.state != "pending":
                    console.print(f"{row.name:<40} {row.state:<12} {row.step:>9,}/{row.total_steps:,}  "
                                  f"eval {_eval(row.eval_mean, row.eval_std)}", soft_wrap=True)
        if not alive:
            break
        worker.join(1.0)
