"""Draw a learning-curve CSV from `learning.py` as a plain-text plot (one marker per seed).

    python benchmarks/plot_curves.py benchmarks/results/pendulum-curve.csv --threshold -200

Writes `<csv stem>.txt` next to the CSV and prints it. Text rather than PNG so that it reads
in a terminal, in a diff and in the docs without an image viewer or a plotting extra.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import plotext as plt

from ddpg_tui.ui.widgets.plots import count_ticks

SEED_MARKERS = "•x+o*#"  # no colour in a text file, so seeds are told apart by their marker


def read_curve(csv_path: Path) -> tuple[str, dict[int, list[dict[str, float]]]]:
    """The preset named in a curve CSV written by learning.py, and its rows grouped by seed."""
    preset, by_seed = "", {}
    with csv_path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            preset = row["preset"]
            values = {k: float(v) for k, v in row.items() if k != "preset"}
            by_seed.setdefault(int(values["seed"]), []).append(values)
    if not by_seed:
        raise ValueError(f"{csv_path}: no evaluations in it")
    return preset, by_seed


def draw_curves(csv_path: Path, threshold: float | None, width: int = 78, height: int = 20) -> str:
    _, by_seed = read_curve(csv_path)
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    seeds = sorted(by_seed)
    for marker, seed in zip(SEED_MARKERS * len(seeds), seeds, strict=False):
        rows = by_seed[seed]
        plt.plot([int(r["step"]) for r in rows], [r["eval_mean"] for r in rows], marker=marker, label=f"seed {seed}")
    if threshold is not None:
        plt.hline(threshold)
    name = csv_path.name.removesuffix(".csv").removesuffix("-curve").removesuffix(".partial")
    solved = "" if threshold is None else f", solved line {threshold:g}"
    plt.title(f"{name}: eval return{solved}")
    plt.xlabel("env steps")
    steps = [int(r["step"]) for rows in by_seed.values() for r in rows]
    plt.xticks(*count_ticks(max(steps), smallest=min(steps)))
    return "\n".join(line.rstrip() for line in plt.uncolorize(plt.build()).splitlines()) + "\n"


def write_plot(csv_path: Path, threshold: float | None) -> Path:
    text_path = csv_path.with_suffix(".txt")
    text_path.write_text(draw_curves(csv_path, threshold))
    return text_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, help="a *-curve.csv or *.partial.csv written by learning.py")
    parser.add_argument("--threshold", type=float, help="draw the solved line at this return")
    args = parser.parse_args()
    print(write_plot(args.csv, args.threshold).read_text(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
