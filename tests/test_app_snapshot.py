"""A screenshot of the dashboard, fed fixed data so the picture is stable."""

from __future__ import annotations

import math

from agents.events import EvalResult, StepStats, TrainerState
from ddpg_tui.app import DDPGApp
from ddpg_tui.session import FixedSession, Snapshot


def fixed_snapshot() -> Snapshot:
    episodes = 60
    steps = tuple(200 * (i + 1) for i in range(episodes))
    returns = tuple(-1400 + 1250 * (1 - math.exp(-i / 12)) + 60 * math.sin(i) for i in range(episodes))
    evals = tuple(EvalResult(s, -1300 + 1150 * (1 - math.exp(-s / 2500)), 40.0, (), best=True)
                  for s in range(2000, 12001, 2000))
    updates = tuple(range(200, 11001, 200))
    return Snapshot(
        version=1, env_id="Pendulum-v1", run_dir="runs/pendulum-demo", state=TrainerState.TRAINING,
        progress=StepStats(step=12000, total_steps=20000, episode=60, steps_per_second=161.0, buffer_size=12000,
                           buffer_capacity=200000, noise_sigma=0.1, elapsed=74.0, updates=11000),
        episode_steps=steps, episode_returns=returns, evals=evals, best_eval=evals[-1],
        loss_updates=updates, critic_losses=tuple(5 * math.exp(-u / 3000) + 0.3 for u in updates),
        actor_losses=tuple(20 + 60 * (1 - math.exp(-u / 4000)) for u in updates),
        sigma_history=(0.1,) * 60,
        log=((1, "info", "  11,800 ep 59   R -151.3"), (2, "eval", "  12,000 eval -154.2 ± 40.0  (best)"),
             (3, "info", "  12,000 ep 60   R -148.0")),
    )


def test_dashboard_at_120x40(snap_compare) -> None:
    assert snap_compare(DDPGApp(session=FixedSession(fixed_snapshot())), terminal_size=(120, 40))


def test_dashboard_at_80x24(snap_compare) -> None:
    assert snap_compare(DDPGApp(session=FixedSession(fixed_snapshot())), terminal_size=(80, 24))
