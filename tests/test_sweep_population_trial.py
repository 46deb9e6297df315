"""`sweep --seeds-together` without Ray: a PopulationTrial driven with a fake `tune.report`.

What Tune would see (the ConfigReport metrics and the marker checkpoint), what each seed's run
folder holds, a stop through the report (ASHA's), and the resume that follows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.config import DDPGConfig
from agents.controls import Controls
from agents.events import EvalResult
from agents.trainer import Trainer
from ddpg_tui.sweeps.population_trial import PopulationTrial
from ddpg_tui.sweeps.space import Variant
from ddpg_tui.sweeps.trial import MARKER_FILE, TrialPlan, saved_state


def config(**changes: Any) -> DDPGConfig:
    return DDPGConfig(env_id="Pendulum-v1", total_steps=600, learning_starts=50, batch_size=16, hidden_sizes=(16, 16),
                      eval_every=200, eval_episodes=1, save_every=200, buffer_size=1000, device="cpu",
                      threads=1).replace(**changes)


class FakeTune:
    """`tune.report` and `tune.Checkpoint.from_directory`, recording what the trial hands Tune."""

    def __init__(self, stop_at_asha_step: int = 0) -> None:
        self.metrics: list[dict] = []
        self.markers: list[dict] = []
        self.stop_at = stop_at_asha_step

    def report(self, metrics: dict, checkpoint: Any = None) -> None:
        self.metrics.append(metrics)
        if checkpoint is not None:
            self.markers.append(checkpoint)
        if self.stop_at and metrics["asha_step"] >= self.stop_at:
            raise SystemExit  # what Tune's report raises in a trial that ASHA stopped

    @staticmethod
    def checkpoint(folder: str) -> dict:
        return json.loads((Path(folder) / MARKER_FILE).read_text())  # read now: the folder is temporary

    def last_marker(self) -> dict[int, tuple[int, str]]:
        return {int(seed): (entry["step"], entry["save_id"]) for seed, entry in self.markers[-1].items()}


def trial(tmp_path: Path, tune: FakeTune, base: DDPGConfig, seeds: tuple[int, ...] = (0, 1)) -> PopulationTrial:
    plan = TrialPlan(sweep_dir=str(tmp_path), base=base.to_dict(), grid_keys=("actor_lr",), seeds=seeds,
                     progress_every=0.2)
    return PopulationTrial(Variant((("actor_lr", base.actor_lr),)), plan, tune.report, tune.checkpoint, "x", "n")


def eval_steps(run_dir: Path) -> list[int]:
    rows = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    return [row["step"] for row in rows if row["kind"] == "eval"]


def test_a_configs_seeds_train_as_one_population_into_their_own_folders_and_report_as_a_config(
        tmp_path: Path) -> None:
    tune = FakeTune()
    population = trial(tmp_path, tune, config())
    population.run({}, 1, None)

    final = tune.metrics[-1]
    seeds = final["seed_reports"]
    assert [(s["seed"], s["state"], s["step"]) for s in seeds] == [(0, "finished", 600), (1, "finished", 600)]
    for seed in (0, 1):
        run_dir = population.config_dir / f"seed{seed}"
        assert eval_steps(run_dir) == [200, 400, 600]
        assert saved_state(run_dir / "checkpoints" / "latest.pt")[0] == 600
        assert f"seed = {seed}" in (run_dir / "config.toml").read_text()
    # The median over the seeds at their last common evaluation, and ASHA's clock that stops short of the end.
    finals = sorted(s["evals"][-1][1] for s in seeds)
    assert final["median_eval"] == pytest.approx(sum(finals) / 2) and final["median_step"] == 600
    assert {m["asha_step"] for m in tune.metrics} >= {200, 400} and max(m["asha_step"] for m in tune.metrics) == 400
    # The marker Tune keeps names each seed's last latest.pt, as a ConfigTrial's does.
    assert tune.last_marker() == {seed: saved_state(population.config_dir / f"seed{seed}" / "checkpoints" /
                                                    "latest.pt") for seed in (0, 1)}
    # The members are what a population trains: the same as `train --seeds 0,1` would, seed by seed.
    from agents.population import PopulationTrainer

    evals: dict[int, list[float]] = {0: [], 1: []}
    PopulationTrainer(config(actor_lr=config().actor_lr), [0, 1],
                      sink=lambda k, e: evals[k].append(e.mean) if isinstance(e, EvalResult) else None).run()
    assert [[round(mean, 4) for _, mean, _ in s["evals"]] for s in seeds] == [
        [round(m, 4) for m in evals[k]] for k in (0, 1)]


def test_a_stop_from_tune_saves_every_member_and_a_retry_resumes_the_population_from_the_marker(
        tmp_path: Path) -> None:
    tune = FakeTune(stop_at_asha_step=200)  # ASHA stops the config at its first rung
    with pytest.raises(SystemExit):
        trial(tmp_path, tune, config()).run({}, 1, None)
    folders = [tmp_path / "actor_lr=0.001" / f"seed{seed}" for seed in (0, 1)]
    saved = {saved_state(folder / "checkpoints" / "latest.pt")[0] for folder in folders}
    assert len(saved) == 1 and 200 <= saved.pop() < 600, "every member saved, at one step, on its way out"
    stopped_at = saved_state(folders[0] / "checkpoints" / "latest.pt")[0]

    # The marker a retry gets names the saves Tune last heard of (here: the folders' own, as if it had heard).
    marker = {seed: saved_state(folder / "checkpoints" / "latest.pt") for seed, folder in enumerate(folders)}
    retry = FakeTune()
    trial(tmp_path, retry, config()).run(marker, 1, None)
    seeds = retry.metrics[-1]["seed_reports"]
    assert [(s["state"], s["step"], s["resumed_from"]) for s in seeds] == [("finished", 600, stopped_at)] * 2
    for folder in folders:
        assert eval_steps(folder) == [200, 400, 600], "no evaluation lost or written twice"
        assert saved_state(folder / "checkpoints" / "latest.pt")[0] == 600
    # Started again once finished (a resumed sweep), the config has nothing left to do.
    again = FakeTune()
    trial(tmp_path, again, config()).run(retry.last_marker(), 1, None)
    assert [s["state"] for s in again.metrics[-1]["seed_reports"]] == ["finished"] * 2
    assert all(eval_steps(folder) == [200, 400, 600] for folder in folders)


def test_members_saved_at_different_steps_carry_on_in_turns_from_their_own_saves(tmp_path: Path) -> None:
    # A population resumes only from one step; a kill between two members' saves must not lose either's steps.
    base = config()
    for seed, stop_at in ((0, 200), (1, 400)):
        run_dir = tmp_path / "actor_lr=0.001" / f"seed{seed}"
        controls = Controls()

        def stop(event: object, at: int = stop_at, controls: Controls = controls) -> None:
            if isinstance(event, EvalResult) and event.step == at:
                controls.stop(save=True)
        Trainer(base.replace(seed=seed), stop, run_dir, controls=controls).run()
    tune = FakeTune()
    trial(tmp_path, tune, base).run({}, 1, None)
    seeds = tune.metrics[-1]["seed_reports"]
    assert [(s["state"], s["step"], s["resumed_from"]) for s in seeds] == [("finished", 600, 200),
                                                                           ("finished", 600, 400)]


def test_seeds_together_is_asked_on_the_command_line_and_kept_in_sweep_json_for_resume(tmp_path: Path) -> None:
    import argparse

    from ddpg_tui.cli.commands.sweep import add_arguments, resolve_sweep_request
    from ddpg_tui.sweeps.spec import SweepSpec

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = ["--preset", "pendulum", "--seeds", "0-1", "--headless"]
    plain = resolve_sweep_request(parser.parse_args(args), root=tmp_path)
    together = resolve_sweep_request(parser.parse_args([*args, "--seeds-together"]), root=tmp_path)
    assert (plain.spec.seeds_together, together.spec.seeds_together) == (False, True)
    assert "one Tune trial per config (its seeds as one population)" in together.spec.facts()[1]
    assert SweepSpec.from_json(together.spec.to_json()).seeds_together is True  # --resume trains them so again
    older = json.loads(plain.spec.to_json())
    del older["seeds_together"]  # sweep.json of a sweep made before the option: its seeds in turns
    assert SweepSpec.from_json(json.dumps(older)).seeds_together is False
