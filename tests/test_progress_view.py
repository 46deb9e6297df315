"""The headless progress view's closing line, piped: it shows the step the run ended on."""

from __future__ import annotations

import io

from rich.console import Console

from agents.events import StateChanged, StepStats, TrainerState
from ddpg_tui.cli.headless import ProgressView


def _piped_view() -> tuple[ProgressView, io.StringIO]:
    out = io.StringIO()
    return ProgressView(Console(file=out, force_terminal=False, width=200), 1500), out


def _stats(step: int) -> StepStats:
    return StepStats(step, 1500, 3, 100.0, step, 10_000, 0.1, 1.0, step)


def _finished_lines(out: io.StringIO) -> list[str]:
    return [line for line in out.getvalue().splitlines() if line.startswith("finished")]


def test_the_closing_line_waits_for_the_last_steps_when_the_total_is_off_the_interval() -> None:
    # The trainer's order for 1,500 steps and StepStats every 200: 1,400, then the state, then 1,500.
    view, out = _piped_view()
    for event in (_stats(1400), StateChanged(1500, TrainerState.FINISHED), _stats(1500)):
        view(event)
    lines = _finished_lines(out)
    assert len(lines) == 1 and lines[0].startswith("finished   1,500/1,500"), out.getvalue()


def test_the_closing_line_is_printed_at_once_when_the_progress_is_already_there() -> None:
    view, out = _piped_view()
    for event in (_stats(1500), StateChanged(1500, TrainerState.FINISHED), _stats(1500)):
        view(event)
    lines = _finished_lines(out)
    assert len(lines) == 1 and lines[0].startswith("finished   1,500/1,500"), out.getvalue()


def test_a_real_run_off_the_interval_closes_on_its_last_step(tiny_config) -> None:
    from agents.trainer import Trainer

    view, out = _piped_view()
    Trainer(tiny_config.replace(total_steps=250), view).run()
    lines = _finished_lines(out)
    assert len(lines) == 1 and lines[0].startswith("finished   250/250"), out.getvalue()
