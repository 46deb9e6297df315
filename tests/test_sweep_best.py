"""A sweep's summary carries its statistics, and its winner becomes best.toml, which `train --preset` runs as is.

No Ray: the ranked configs come from fixed trial rows, as the driver's board would hold them.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from agents.config import DDPGConfig
from ddpg_tui.sweeps.board import TrialRow
from ddpg_tui.sweeps.space import Variant
from ddpg_tui.sweeps.spec import SweepSpec, write_spec
from ddpg_tui.sweeps.summary import write_summary
from presets import PresetError, load_preset_file

ROOT = Path(__file__).resolve().parents[1]
BASE = DDPGConfig(total_steps=300, learning_starts=100, batch_size=32, hidden_sizes=(16, 16), eval_every=0,
                  eval_episodes=1, threads=1, device="cpu", buffer_size=1000, seed=7)
VARIANTS = [Variant((("actor_lr", 0.001), ("tau", 0.02))), Variant((("actor_lr", 0.0003), ("tau", 0.005)))]
FINALS = {VARIANTS[0].label: [-150.0, -130.0, -170.0], VARIANTS[1].label: [-400.0, -300.0, -350.0]}


def rows(stopped: str | None = None) -> list[TrialRow]:
    result = []
    for label, finals in FINALS.items():
        for seed, final in enumerate(finals):
            state = "early-stopped" if label == stopped and seed == 0 else "finished"
            result.append(TrialRow(f"{label}-seed{seed}", label, seed, state=state, step=300, total_steps=300,
                                   evals=((300, final, 1.0),), best_eval=final, best_step=300))
    return result


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "runs" / "sweeps" / "lr-demo"
    folder.mkdir(parents=True)
    spec = SweepSpec(name="lr-demo", label="pendulum", base=BASE, grid={"actor_lr": (0.001, 0.0003)},
                     seeds=(0, 1, 2), threshold=-200.0)
    write_spec(folder, spec)
    return folder


def summarize(sweep_dir: Path, trial_rows: list[TrialRow]) -> str:
    return write_summary(sweep_dir, "Sweep lr-demo", ["fact"], trial_rows, VARIANTS, ["actor_lr", "tau"], -200.0)[2]


def test_the_summary_shows_iqm_interval_probability_of_improvement_and_a_few_seeds_note(sweep_dir: Path) -> None:
    text = summarize(sweep_dir, rows())
    header = next(line for line in text.splitlines() if line.startswith("| rank"))
    assert header.endswith("| IQM | IQM 95% CI |")
    first = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    # 3 seeds: the IQM cuts int(3/4) = 0 from each end, so it is the mean, -150; resampled means of 3 seeds span
    # the lowest seed to the highest (each drawn 3 times has chance 1/27 > 2.5%), so that is the interval.
    assert first.startswith(f"| 1 | `{VARIANTS[0].label}` | 3 | -150.0 |")
    assert first.endswith("| -150.0 | -170.0 – -130.0 |")
    # Every seed of the first beats every seed of the second.
    assert f"- P(`{VARIANTS[0].label}` beats `{VARIANTS[1].label}` on a seed) = 1.00 (95% CI 1.00 – 1.00)" in text
    assert ("- 3 seeds: the 95% interval is wide, but the gap to the runner-up's median (200.0) is large: at this "
            "spread between seeds (std 20.0) about 2 seeds per config tell it apart") in text
    with (sweep_dir / "summary.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert {r["config_median"] for r in table if r["config"] == VARIANTS[0].label} == {"-150.0000"}
    assert {r["config_iqm"] for r in table if r["config"] == VARIANTS[1].label} == {"-350.0000"}
    low, high = float(table[0]["config_iqm_ci_low"]), float(table[0]["config_iqm_ci_high"])
    assert -170.0 <= low <= -150.0 <= high <= -130.0


def test_best_toml_is_the_best_finished_config_with_where_it_came_from(sweep_dir: Path) -> None:
    summarize(sweep_dir, rows())
    text = (sweep_dir / "best.toml").read_text()
    assert text.startswith(f"# The best finished config of sweep lr-demo ({sweep_dir}): {VARIANTS[0].label}\n"
                           "# 3 seeds, final eval median -150.0, IQM -150.0 (95% CI -1")
    data = tomllib.loads(text)
    assert data["env_id"] == "Pendulum-v1" and data["solved"]["threshold"] == -200.0
    expected = {**BASE.to_dict(), "actor_lr": 0.001, "tau": 0.02}
    assert data["hyperparameters"] == {k: v for k, v in expected.items() if k != "env_id"}
    assert load_preset_file(sweep_dir / "best.toml").config == BASE.replace(actor_lr=0.001, tau=0.02)


def test_a_config_with_a_stopped_seed_is_not_the_best_finished_one(sweep_dir: Path) -> None:
    summarize(sweep_dir, rows(stopped=VARIANTS[0].label))
    assert load_preset_file(sweep_dir / "best.toml").config == BASE.replace(actor_lr=0.0003, tau=0.005)


def test_no_finished_config_writes_no_best_toml(sweep_dir: Path) -> None:
    summarize(sweep_dir, [r for r in rows(stopped=VARIANTS[0].label) if r.variant == VARIANTS[0].label])
    assert not (sweep_dir / "best.toml").exists()


def test_a_preset_file_whose_env_imports_a_module_is_trusted_only_with_env(tmp_path: Path) -> None:
    path = tmp_path / "module-env.toml"
    path.write_text('env_id = "this:Pendulum-v1"\n[hyperparameters]\ngamma = 0.9\n')
    with pytest.raises(PresetError, match="which would import module 'this'"):
        load_preset_file(path)
    chosen = load_preset_file(path, env_id="Pendulum-v1")
    assert chosen.env_id == chosen.config.env_id == "Pendulum-v1" and chosen.config.gamma == 0.9


@pytest.mark.slow
def test_train_preset_best_toml_trains_that_exact_config(sweep_dir: Path) -> None:
    summarize(sweep_dir, rows())
    folder = sweep_dir.parents[2]
    result = subprocess.run([sys.executable, "-m", "ddpg_tui", "train", "--preset", "runs/sweeps/lr-demo/best.toml",
                             "--headless", "--run-dir", "runs/again"], cwd=folder, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    trained = tomllib.loads((folder / "runs" / "again" / "config.toml").read_text())
    best = tomllib.loads((sweep_dir / "best.toml").read_text())
    assert trained["env_id"] == best["env_id"]
    assert trained["hyperparameters"] == best["hyperparameters"]
    assert trained["hyperparameters"]["actor_lr"] == 0.001 and trained["hyperparameters"]["seed"] == 7
