"""The configs a searcher proposed, kept in the sweep folder as `proposed.json`, in the order proposed.

Grid and random configs are known before a sweep starts (sweep.json holds the draws); a
`--search tpe` sweep's arrive as Tune asks the searcher for them. The driver writes each one
here as its trial starts, so the summary, best.toml and `ddpg-tui compare` find a TPE sweep's
configs the way they find the others': `sweep_variants` is where every reader asks.
Plain JSON, so nothing here is unpickled; every value is checked as --set checks it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from agents.config import validate_field
from ddpg_tui.sweeps.space import Variant
from ddpg_tui.sweeps.spec import SweepSpec

PROPOSED_FILE = "proposed.json"


def write_proposed(sweep_dir: Path, variants: Iterable[Variant]) -> None:
    """Every proposal so far, by its number; replaced whole, so a reader never sees half a file."""
    ordered = sorted(variants, key=lambda v: v.sample if v.sample is not None else -1)
    rows = [{"index": v.sample, "overrides": {k: list(x) if isinstance(x, tuple) else x for k, x in v.overrides}}
            for v in ordered]
    target = Path(sweep_dir) / PROPOSED_FILE
    partial = target.with_name(f".{PROPOSED_FILE}.writing")
    partial.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, target)


def read_proposed(sweep_dir: Path) -> list[Variant]:
    """The proposals written so far; none for a folder without the file or with a damaged one."""
    try:
        rows = json.loads((Path(sweep_dir) / PROPOSED_FILE).read_text(encoding="utf-8"))
        return [Variant(tuple((k, validate_field(k, v)) for k, v in row["overrides"].items()), sample=int(row["index"]))
                for row in rows]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def sweep_variants(spec: SweepSpec, sweep_dir: Path) -> list[Variant]:
    """A sweep's configs: known in advance for grid and random search, as proposed so far for TPE."""
    return read_proposed(sweep_dir) if spec.search == "tpe" else spec.variants()
