"""How a finished run or sweep reads in a table: the runs screen and `compare --headless` print the same.

The index itself (`ddpg_tui.sweeps.history`) holds numbers and values; the words, the date format and how a
field that differs reads are the front-ends', so they live here, and `compare --headless` imports them from the UI.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from ddpg_tui.stats import estimate, few_seeds_note, interval_text, probability_of_improvement
from ddpg_tui.sweeps.history import FieldValue, RunRecord, Series
from ddpg_tui.sweeps.space import format_value


def fmt_return(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}"


def date_text(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def steps_text(record: RunRecord) -> str:
    trials = f" ×{record.trials}" if record.kind == "sweep" else ""
    return f"{record.steps:,}/{record.total_steps:,}{trials}"


def field_text(field: FieldValue) -> str:
    """One cell of the fields that differ: the value as the sweep spells it ('-' where the series has no such
    field), and the step it was changed live at, so an equal final value is not mistaken for an unchanged one."""
    value = format_value(field.value) if field.present else "-"
    changed = f" (changed live at step {field.changed_at:,})" if field.changed_at is not None else ""
    return value + changed


def differences_text(differences: Sequence[tuple[str, Sequence[FieldValue]]]) -> list[tuple[str, list[str]]]:
    """`compare_rows`' fields that differ as text: each field with one cell per series."""
    return [(key, [field_text(value) for value in values]) for key, values in differences]


def statistics_cells(series: Series) -> tuple[str, str]:
    """The IQM of the seeds' final evaluations and its bootstrap 95% interval ('-' and '' for one seed)."""
    e = estimate(series.finals)
    return fmt_return(e.iqm), interval_text(e.low, e.high)


def _env(series: Series) -> str:
    return str(series.config.get("env_id", ""))


def statistics_lines(series: Sequence[Series]) -> list[str]:
    """What the seeds say about the comparison: P(the best config beats each other one on the same env), and
    a word when the best one has too few seeds. Only series with two or more seeds have an interval to speak of."""
    candidates = [(s, estimate(s.finals)) for s in series if len(s.finals) >= 2]
    if not candidates:
        return []
    top, top_estimate = max(candidates, key=lambda c: c[1].median)
    rivals = [(s, e) for s, e in candidates if s is not top and _env(s) == _env(top)]
    lines = []
    for rival, _ in rivals:
        improvement = probability_of_improvement(top.finals, rival.finals)
        if improvement is not None:
            lines.append(f"P({top.label} beats {rival.label} on a seed) = {improvement.probability:.2f} "
                         f"(95% CI {interval_text(improvement.low, improvement.high, 2)})")
    difference, what = 0.1 * abs(top_estimate.iqm), "a tenth of its IQM"
    if rivals:
        runner_up = max((e.median for _, e in rivals))
        difference, what = top_estimate.median - runner_up, "the gap to the runner-up's median"
    note = few_seeds_note(top_estimate.seeds, top_estimate.std, difference, what)
    if note:
        lines.append(f"{top.label}: {note}")
    return lines
