"""--reeval: each trial's latest checkpoint on fresh episodes, as Ray tasks spread over the cluster.

A checkpoint that cannot be evaluated where its task ran (the node does not see the sweep
folder, the file is damaged) is not a number: it comes back as one line saying which node,
which file and why, and the summary leaves its cell empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Reevaluation:
    results: dict[str, tuple[float, float]] = field(default_factory=dict)  # trial -> (mean, std)
    problems: dict[str, str] = field(default_factory=dict)  # trial -> the one line that says why it has none

    def lines(self) -> list[str]:
        return [f"--reeval: {line}" for _, line in sorted(self.problems.items())]


def reevaluate(path: str, episodes: int, env_id: str, seed: int) -> tuple[float, float] | str:
    """(mean, std) of a checkpoint on fresh episodes, or why not (a Ray task; imports torch where it runs)."""
    import torch

    from agents.errors import first_line
    from agents.evaluation import evaluate_checkpoint

    torch.set_num_threads(1)
    try:
        if not Path(path).is_file():
            return f"{path} is not there"
        result = evaluate_checkpoint(path, episodes, seed, env_id=env_id)
    except Exception as error:  # any reason a checkpoint cannot be evaluated is one line, not a NaN
        return f"{path} cannot be evaluated ({first_line(error)})"
    return result.evaluation.mean, result.evaluation.std


def _where() -> str:
    import ray

    return ray.util.get_node_ip_address()


def _reevaluate_here(path: str, episodes: int, env_id: str, seed: int) -> tuple[float, float] | str:
    outcome = reevaluate(path, episodes, env_id, seed)
    return outcome if not isinstance(outcome, str) else f"on node {_where()}: {outcome}"


def reevaluate_all(checkpoints: Mapping[str, Path], episodes: int, env_id: str, seed: int,
                   progress: Callable[[int, int], None] | None = None) -> Reevaluation:
    """Every trial's checkpoint (trial -> latest.pt) on `episodes` fresh episodes, each a Ray task of 1 CPU."""
    import ray

    from agents.errors import first_line

    task = ray.remote(num_cpus=1, max_retries=0)(_reevaluate_here)
    pending = {task.remote(str(path), episodes, env_id, seed): name for name, path in checkpoints.items()}
    outcome = Reevaluation()
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        name = pending.pop(done[0])
        try:
            value = ray.get(done[0])
        except Exception as error:  # the task died (its worker or node): one trial's loss, not all of them
            value = f"{checkpoints[name]}: its task failed ({first_line(error)})"
        if isinstance(value, str):
            outcome.problems[name] = value
        else:
            outcome.results[name] = value
        if progress is not None:
            progress(len(outcome.results) + len(outcome.problems), len(checkpoints))
    return outcome
