"""A checked request for a new or resumed sweep, and starting it: shared by `ddpg-tui sweep` and the app.

The command line (`ddpg_tui.cli.commands.sweep`) and the form's sweep dialog (`ddpg_tui.ui.screens.sweep_setup`)
both build a `SweepRequest` with `new_sweep_request`, so they refuse the same sweeps with the same
line; both front-ends start it with `start_sweep`. Neither front-end imports the other: this module
imports only `agents`, the rest of this package and `ddpg_tui.request` (UsageError).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.config import DDPGConfig, validate_field
from ddpg_tui.request import UsageError

if TYPE_CHECKING:
    from ddpg_tui.sweeps.driver import SweepRun
    from ddpg_tui.sweeps.spec import SweepSpec

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class SweepRequest:
    """A checked `ddpg-tui sweep` command, before anything heavy is imported."""

    spec: SweepSpec | None  # None when resuming: sweep.json has it
    sweep_dir: Path
    resume: bool
    jobs: int | None
    address: str | None
    headless: bool
    reeval: int | None
    env_id: str | None = None  # --env with --resume: the user's own id, replacing the folder's
    trust_folder: bool = False
    gpus_per_trial: float | None = None  # --gpus-per-trial; None: 1 when the cluster has GPUs and device allows


def new_sweep_request(base: DDPGConfig, label: str, threshold: float | None, seeds: tuple[int, ...],
                      grid: dict[str, tuple[Any, ...]], *, samples: tuple[Any, ...] = (), sample_count: int = 0,
                      sample_seed: int = 0, scheduler: str | None = None, name: str | None = None,
                      jobs: int | None = None, address: str | None = None, headless: bool = False,
                      reeval: int | None = None, root: Path = Path("runs") / "sweeps",
                      gpus_per_trial: float | None = None, search: str = "random",
                      seeds_together: bool = False) -> SweepRequest:
    """The checks a new sweep needs once its configs are known (the command line's and the app's form's)."""
    from ddpg_tui.sweeps.space import count_runs
    from ddpg_tui.sweeps.spec import SweepSpec

    if search == "tpe" and not samples:
        raise UsageError("--search tpe searches the space of --sample; give at least one --sample KEY=DIST(A,B)")
    if search == "tpe" and grid:
        # A grid is every value on every config; TPE chooses each value itself, from the results so far.
        raise UsageError("--search tpe cannot be combined with --grid: TPE chooses every searched value; "
                         f"give {next(iter(grid))} to --sample as KEY=choice(a,b) instead")
    if seeds_together and base.device == "cuda":
        raise UsageError("--seeds-together trains a config's seeds on the CPU (the population trainer has no GPU "
                         "path yet); set device=cpu, or leave --seeds-together out")
    if scheduler == "asha" and not base.eval_every:
        raise UsageError("--scheduler asha compares evaluations during training; set eval_every > 0")
    if not base.save_every:
        # A trial whose worker dies resumes from its last save; with none, it would start over.
        base = base.replace(save_every=base.eval_every or max(1, base.total_steps // 10))
    if name is not None and not NAME_PATTERN.match(name):
        raise UsageError(f"--name {name!r}: use letters, digits, '.', '_' and '-' (a folder name under {root})")
    if name is None:
        from agents.run_files import new_run_name

        name = new_run_name(label)
    sweep_dir = root / name
    if sweep_dir.exists():
        raise UsageError(f"sweep {sweep_dir} already exists; carry it on with --resume {sweep_dir}, "
                         "or choose another --name")
    count = count_runs(grid, sample_count, seeds)
    if count > 10_000:
        raise UsageError(f"{count:,} trials is too many for one sweep (at most 10,000); use fewer values or seeds")
    validate_field("seed", seeds[0])
    spec = SweepSpec(name=name, label=label, base=base, grid=grid, samples=samples, sample_count=sample_count,
                     sample_seed=sample_seed, seeds=seeds, scheduler=scheduler, threshold=threshold,
                     reeval=reeval or 0, search=search, seeds_together=seeds_together)
    return SweepRequest(spec, sweep_dir, False, jobs, address, headless, reeval, gpus_per_trial=gpus_per_trial)


def start_sweep(request: SweepRequest) -> SweepRun:
    """Connect to Ray and make (or reopen) the sweep's folder; SweepError becomes one line and exit 2."""
    import shutil
    from dataclasses import replace

    from ddpg_tui.sweeps.cluster import check_address, check_nodes, connect, require_ray, trial_resources
    from ddpg_tui.sweeps.space import draw_samples
    from ddpg_tui.sweeps.spec import SweepError, check_resumable, create_sweep_folder, load_spec, write_spec

    try:
        if request.address is not None:
            check_address(request.address)  # before Ray loads: a dead address answers in a second, not five
        require_ray()
        if request.resume:
            check_resumable(request.sweep_dir)
        spec = load_spec(request.sweep_dir) if request.resume else request.spec
        assert spec is not None
        if spec.search == "tpe":
            from ddpg_tui.sweeps.search import require_optuna

            require_optuna()
        if request.resume:
            spec = trusted_spec(spec, request)
        if request.reeval is not None:
            spec = replace(spec, reeval=request.reeval)
        cluster = connect(request.address, request.jobs)
        import ray

        decided = trial_resources(spec.base.device, ray.cluster_resources(), request.gpus_per_trial,
                                  cluster.largest_node_gpus)
        cluster = replace(cluster, gpus_per_trial=decided.gpus)
        made_here = None
        if not request.resume and spec.search == "random":
            # Drawn here, once: sweep.json keeps them, so --resume runs the same configs.
            spec = replace(spec, drawn=tuple(draw_samples(spec.samples, spec.sample_count, spec.sample_seed)))
        if not request.resume:
            made_here = create_sweep_folder(request.sweep_dir.parent, request.sweep_dir.name)
        if request.address is not None:
            try:
                check_nodes(request.sweep_dir)  # before any trial: every node sees this folder and runs these versions
            except SweepError:
                if made_here is not None:
                    shutil.rmtree(made_here, ignore_errors=True)  # nothing ran: the same command may be run again
                raise
        if made_here is not None:
            write_spec(made_here, spec)
        # The device is the run's, not the sweep's: sweep.json keeps the asked one; a resume elsewhere decides again.
        spec = replace(spec, base=spec.base.replace(device=decided.device))
    except SweepError as error:
        raise UsageError(str(error)) from None
    from ddpg_tui.sweeps.driver import SweepRun

    return SweepRun(spec, request.sweep_dir, cluster, jobs=request.jobs, resume=request.resume,
                    trust_folder=request.trust_folder)


def trusted_spec(spec: SweepSpec, request: SweepRequest) -> SweepSpec:
    """A resumed sweep's spec, once nothing in its folder can run code without the user saying so.

    The env ids of sweep.json and of each trial's config.toml follow the checkpoint rule (no
    `module:`, registered already), unless --env replaces them; Tune's pickled state must carry
    this user's signature, unless --trust-folder. Each refusal is a UsageError (one line, exit 2).
    """
    from dataclasses import replace

    from agents.envs import EnvError, check_env_id_from_file
    from ddpg_tui.sweeps.trust import verify_state

    try:
        if request.env_id is not None:
            spec = replace(spec, base=spec.base.replace(env_id=request.env_id))  # the trials' id too
        else:
            check_env_id_from_file(spec.base.env_id, f"{request.sweep_dir / 'sweep.json'}")
            for config_toml in sorted(request.sweep_dir.glob("*/*/config.toml")):  # <config>/seed<k>/
                if (trial_env := _toml_env_id(config_toml)) is not None:
                    check_env_id_from_file(trial_env, str(config_toml))
        if not request.trust_folder:
            verify_state(request.sweep_dir)
    except EnvError as error:
        raise UsageError(str(error)) from None
    return spec


def _toml_env_id(path: Path) -> object:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8")).get("env_id")
    except (OSError, ValueError):
        return None  # an unreadable config.toml names no env; the trial rewrites it from sweep.json
