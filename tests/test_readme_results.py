"""The learning-results table in docs/results.md is generated from the sweeps' summary.md, not typed."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from ddpg_tui.sweeps.summary import VariantSummary, markdown

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("readme_results", ROOT / "benchmarks" / "readme_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_summary_becomes_one_readme_row_with_the_sweeps_own_numbers(tmp_path: Path) -> None:
    script = load_script()
    variants = [VariantSummary("base", 3, 3, (231.4, 210.2, 250.9), (205.3, 180.1, 220.0), 190_000.0, 3),
                VariantSummary("tau=0.01", 3, 3, (101.0, 90.0, 120.0), None, math.inf, 0),
                # Stopped before the end: its median is at another step, so it is no row of the results.
                VariantSummary("tau=0.1", 3, 0, (50.0, 40.0, 60.0), None, math.inf, 0, state="stopped", step=150_000)]
    text = markdown("Sweep learning-x", ["lunar-lander-continuous (LunarLanderContinuous-v3), 300,000 steps a trial"],
                    variants, 200.0, reeval_episodes=100)
    summary = tmp_path / "lunar-lander-continuous-summary.md"
    summary.write_text(text)
    rows = script.rows_for(summary)
    assert rows[0] == ("| `lunar-lander-continuous` | 3 × 300,000 | 231.4 (210.2 – 250.9) "
                       "| 205.3 (180.1 – 220.0) on 100 | 190,000 (3/3) |")
    assert rows[1].startswith("| `lunar-lander-continuous` `tau=0.01` | 3 × 300,000 | 101.0")
    assert "not measured" in rows[1] and "not reached (0/3)" in rows[1]
    assert len(rows) == 2


def test_the_readme_table_is_what_the_summaries_say() -> None:
    script = load_script()
    text = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    section = text.split(script.BEGIN, 1)[1].split(script.END, 1)[0]
    assert script.BEGIN + section + script.END == script.generated_section(), \
        "run python benchmarks/readme_results.py"
