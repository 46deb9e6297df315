"""Placeholder until the dashboard lands (issue 3)."""

from __future__ import annotations

from typing import Any


def run_app(training: Any) -> int:
    raise SystemExit("ddpg-tui: the app is not built yet; use 'ddpg-tui train --headless'")
