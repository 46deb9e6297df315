"""`ddpg-tui compare`: finished runs and sweeps side by side (in the runs screen, or --headless)."""

from __future__ import annotations

import argparse

from ddpg_tui.request import UsageError

NAME = "compare"
HELP = "compare finished runs or sweeps: curves and the settings that differ"
DESCRIPTION = "Compare runs and sweeps under runs/."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", metavar="RUN_OR_SWEEP", help="run folders or sweep folders")
    parser.add_argument("--headless", action="store_true", help="print a table and a text plot")


def run(args: argparse.Namespace) -> int:
    raise UsageError("compare is not ready yet")
