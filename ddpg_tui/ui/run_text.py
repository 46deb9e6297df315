"""How a finished run or sweep reads in a table: the runs screen and `compare --headless` print the same.

The index itself (`ddpg_tui.sweeps.history`) holds numbers; the words and the date format are the
front-ends', so they live here, beside both rooms, and neither imports the other.
"""

from __future__ import annotations

import math
import time

from ddpg_tui.sweeps.history import RunRecord


def fmt_return(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}"


def date_text(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def steps_text(record: RunRecord) -> str:
    trials = f" ×{record.trials}" if record.kind == "sweep" else ""
    return f"{record.steps:,}/{record.total_steps:,}{trials}"
