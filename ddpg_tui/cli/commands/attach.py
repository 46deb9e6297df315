"""`ddpg-tui attach [RUN]`: the dashboard on a run that another process trains (`train --detach`, the app)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ddpg_tui.request import UsageError

NAME = "attach"
HELP = "open the dashboard on a live run (one started with --detach, or by the app)"
DESCRIPTION = ("Open the dashboard on a run that another process is training, over its control channel. Every key "
               "works; q asks whether to detach (the run goes on) or stop it (save and end).")
EXAMPLES = """\
examples:
  ddpg-tui attach                                      the newest live run under runs/
  ddpg-tui attach runs/pendulum-20261124-120000
  ddpg-tui attach --list                               the live runs, with their step, steps/s and state
"""
RUNS_ROOT = Path("runs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", nargs="?", metavar="RUN", help="a live run's folder (default: the newest live run "
                        "under runs/)")
    parser.add_argument("--list", action="store_true",
                        help="list the live runs under runs/ (step, steps/s, state, process) and return")


def list_live_runs() -> int:
    """One line per live run, newest first, as its process reports it now."""
    from ddpg_tui.channel.client import ChannelClient
    from ddpg_tui.channel.location import ChannelError, live_runs

    rows = []
    for run_dir in live_runs(RUNS_ROOT):
        try:
            client = ChannelClient.connect(run_dir)
            try:
                status = client.request("status")
            finally:
                client.close()
        except ChannelError:
            continue  # it ended while we asked
        total = f"{status['total_steps']:,}" if status.get("total_steps") else "?"
        rows.append((str(run_dir), f"{status['step']:,}/{total}", f"{status['steps_per_second']:,.0f}",
                     status["state"], str(status["pid"]), str(max(0, status["clients"] - 1))))  # less this one
    if not rows:
        print(f"no live run under {RUNS_ROOT}/")
        return 0
    header = ("run", "step", "steps/s", "state", "pid", "attached")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def live_run_dir(run: str | None) -> Path:
    from ddpg_tui.channel.location import ChannelError, live_control, live_runs

    if run is None:
        found = live_runs(RUNS_ROOT)
        if not found:
            raise UsageError(f"no live run under {RUNS_ROOT}/; start one with 'ddpg-tui train --detach', "
                             "or name a run folder")
        return found[0]
    run_dir = Path(run)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a run folder")
    try:
        live_control(run_dir)
    except ChannelError as error:
        raise UsageError(str(error)) from None
    return run_dir


def run(args: argparse.Namespace) -> int:
    if args.list:
        if args.run:
            raise UsageError("--list lists every live run; give no RUN with it")
        return list_live_runs()
    run_dir = live_run_dir(args.run)
    if not sys.stdout.isatty():
        raise UsageError("the dashboard needs a terminal and stdout is not one")
    from ddpg_tui.channel.location import ChannelError
    from ddpg_tui.ui.app import run_attached

    try:
        return run_attached(run_dir)
    except ChannelError as error:  # it ended between the check and the connection
        raise UsageError(str(error)) from None
