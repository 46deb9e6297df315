"""`ddpg-tui compare`: finished runs and sweeps side by side, in the runs screen or as text (--headless)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ddpg_tui.cli.commands import require_terminal
from ddpg_tui.request import EXIT_OK, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from ddpg_tui.sweeps.history import RunRecord

NAME = "compare"
HELP = "compare finished runs or sweeps: their curves and the settings that differ"
DESCRIPTION = ("Compare runs (runs/NAME) and sweeps (runs/sweeps/NAME): one eval-return curve per run, or per "
               "config of a sweep (median over its seeds), each one's IQM over seeds with its bootstrap 95% interval, "
               "how likely the best config beats each other one, and a table of the config fields that differ. With no "
               "folder named, opens the list of runs and sweeps under runs/, newest first.")
EXAMPLES = """\
examples:
  ddpg-tui compare                                               pick from runs/ in the runs screen
  ddpg-tui compare runs/sweeps/lr-demo runs/pendulum-20261126-120000
  ddpg-tui compare runs/sweeps/lr-demo --headless                a table and a text plot
"""
MARKERS = "•x+o*#@%&$"  # piped text has no colour: series are told apart by their marker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", metavar="RUN_OR_SWEEP", help="run folders or sweep folders")
    parser.add_argument("--root", type=Path, default=Path("runs"), metavar="DIR",
                        help="where the runs screen looks (default: runs)")
    parser.add_argument("--headless", action="store_true", help="print a table and a text plot instead")


def read_records(paths: Sequence[str]) -> list[RunRecord]:
    from ddpg_tui.sweeps.history import RunReadError, read_any

    records = []
    for path in paths:
        try:
            records.append(read_any(Path(path)))
        except RunReadError as error:
            raise UsageError(f"compare: {error}") from None
    return records


def run(args: argparse.Namespace) -> int:
    records = read_records(args.runs)  # a bad folder is one line before anything opens
    if not args.headless:
        require_terminal("add --headless to print the comparison as a table and a text plot")
        from ddpg_tui.ui.screens.runs import run_runs_app

        return run_runs_app(args.root, [r.path for r in records])
    if not records:
        from ddpg_tui.sweeps.history import list_runs

        listing = list_runs(args.root)
        if not listing:
            raise UsageError(f"compare: no runs or sweeps under {args.root}/ to list; name folders to compare")
        print_listing(listing)
        return EXIT_OK
    print_comparison(records)
    return EXIT_OK


def _console() -> Console:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:  # piped: no terminal to fit, and a cut table is useless in a log
        console = Console(highlight=False, width=160)
    return console


def print_listing(records: Sequence[RunRecord]) -> None:
    from rich.table import Table

    from ddpg_tui.ui.run_text import date_text, steps_text
    from ddpg_tui.ui.run_text import fmt_return as fmt

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("kind", "folder", "env", "steps", "final eval", "best eval", "date"):
        table.add_column(column, no_wrap=True, justify="right" if "eval" in column else "left")
    for r in records:
        table.add_row(r.kind, str(r.path), r.env_id, steps_text(r), fmt(r.final), fmt(r.best), date_text(r.modified))
    _console().print(table)


def print_comparison(records: Sequence[RunRecord]) -> None:
    """The runs (one row per series, with its plot marker), the fields that differ, and the text plot."""
    from rich.table import Table

    from ddpg_tui.sweeps.history import compare_rows, final_of
    from ddpg_tui.ui.run_text import differences_text, statistics_cells, statistics_lines
    from ddpg_tui.ui.run_text import fmt_return as fmt

    console = _console()
    series, fields_that_differ = compare_rows(records)
    differences = differences_text(fields_that_differ)
    runs = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("", "run / config", "seeds", "final eval", "IQM", "IQM 95% CI", "best eval"):
        runs.add_column(column, no_wrap=True, justify="right" if "eval" in column or "IQM" in column else "left")
    markers = [MARKERS[i % len(MARKERS)] for i in range(len(series))]
    for marker, s in zip(markers, series, strict=True):
        runs.add_row(marker, s.label, str(s.seeds), fmt(final_of(s)), *statistics_cells(s),
                     fmt(max(s.high) if s.high else math.nan))
    console.print(runs)
    for line in statistics_lines(series):  # the seeds' final evals: IQM, bootstrap interval, P(improvement)
        console.print(line, markup=False)
    if differences:
        fields = Table(box=None, header_style="bold", pad_edge=False, title="fields that differ", title_justify="left")
        fields.add_column("field", no_wrap=True)
        for marker in markers:
            fields.add_column(marker, no_wrap=True)
        for key, values in differences:
            fields.add_row(key, *values)
        console.print(fields)
    else:
        console.print("(the configs are the same in every field)")
    console.print(text_plot(series, min(console.width, 120)), markup=False, soft_wrap=True)


def text_plot(series: Sequence, width: int = 100, height: int = 22) -> str:
    """The overlay plot as plain text (the median of each series), as benchmarks/plot_curves.py draws curves."""
    import plotext as plt

    from ddpg_tui.ui.widgets.plots import count_ticks

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    steps = [step for s in series for step in s.steps]
    for index, s in enumerate(series):
        if s.steps:
            plt.plot(list(s.steps), list(s.median), marker=MARKERS[index % len(MARKERS)], label=s.label)
    plt.title("evaluation return (a sweep's config: median over its seeds)")
    plt.xlabel("env steps")
    if steps:
        plt.xticks(*count_ticks(max(steps), smallest=min(steps)))
    return "\n".join(line.rstrip() for line in plt.uncolorize(plt.build()).splitlines()) + "\n"
