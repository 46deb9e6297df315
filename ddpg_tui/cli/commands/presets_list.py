"""`ddpg-tui presets`: the shipped presets, with what each needs."""

from __future__ import annotations

import argparse
import sys

from ddpg_tui.request import EXIT_OK
from presets import list_presets, load_preset

NAME = "presets"
HELP = "list the environment presets"
DESCRIPTION = "List the shipped presets with their env ids, steps, solved thresholds and what they need."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
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
