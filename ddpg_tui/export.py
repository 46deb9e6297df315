"""A checkpoint's actor as a standalone ONNX file: the policy without this project or torch.

The graph takes the raw observation (any batch size) and returns the action in env units,
clipped to the env's bounds: exactly what `DDPGAgent.act()` returns with the noise off.
The file's metadata says which env it is for and where it came from, so a user holding
only the .onnx file can check it against their env.

Nothing is written until the whole model is built and checked; it then goes to a temporary
file beside the target and is renamed over it, so a failure leaves no half-written file.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddpg_tui import __version__
from ddpg_tui.request import UsageError

if TYPE_CHECKING:
    import torch

FORMATS = ("onnx",)
EXTRA_MODULES = ("onnx", "onnxscript")  # torch.onnx.export needs both since torch 2.9
INSTALL_HINT = "pip install 'ddpg-tui[export]'"
INPUT_NAME, OUTPUT_NAME = "observation", "action"


class ExportError(UsageError):
    """A checkpoint or output path that cannot be exported to: one line, exit 2."""


@dataclass(frozen=True, slots=True)
class Exported:
    path: Path
    env_id: str
    step: int
    metadata: dict[str, str]


def check_extra() -> None:
    """Refuse at once, before torch loads, when the export extra is not installed."""
    missing = [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"exporting to ONNX needs {' and '.join(missing)}, which "
                          f"{'is' if len(missing) == 1 else 'are'} not installed: {INSTALL_HINT}")


def check_output_path(path: Path) -> None:
    """The folder must exist and be writable, and the path must not be a folder itself."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ExportError(f"-o {path}: is a folder; give a file name, e.g. {path / 'policy.onnx'}")
    if not folder.is_dir():
        reason = "Not a directory" if folder.exists() else "No such file or directory"
        raise ExportError(f"-o: cannot write {path} ({reason})")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"-o: cannot write {path} (Permission denied)")


def default_output(checkpoint: Path) -> Path:
    """runs/NAME/checkpoints/latest.pt -> runs/NAME/policy.onnx; x.pt -> x.onnx."""
    if checkpoint.parent.name == "checkpoints":
        stem = "policy" if checkpoint.stem == "latest" else f"policy-{checkpoint.stem}"
        return checkpoint.parent.parent / f"{stem}.onnx"
    return checkpoint.with_suffix(".onnx")


def export_onnx(source: Path, output: Path | None = None, env_id: str | None = None) -> Exported:
    """Write the actor of `source` (a .pt file or a run folder) to `output` as ONNX."""
    check_extra()
    from agents.checkpoint import CheckpointError, resolve_checkpoint_path
    from agents.envs import EnvError

    try:
        path = resolve_checkpoint_path(source) if source.is_dir() else source
        output = default_output(path) if output is None else output
        check_output_path(output)
        model, env_meta, payload = _load_actor(path, env_id)
    except (CheckpointError, EnvError) as error:
        raise ExportError(str(error)) from None
    metadata = {**env_meta, **_provenance(path, payload)}
    proto = _to_onnx(model, int(env_meta["obs_dim"]))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    import onnx

    onnx.checker.check_model(proto, full_check=True)
    _write_atomically(output, proto.SerializeToString())
    return Exported(output, env_meta["env_id"], int(payload["counters"]["step"]), metadata)


def _policy_module(actor: torch.nn.Module, low: Any, high: Any) -> torch.nn.Module:
    """The actor plus act()'s clip, as one nn.Module (defined here: torch loads only on export)."""
    import torch

    class Policy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.actor = actor
            self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))

        def forward(self, observation: torch.Tensor) -> torch.Tensor:
            # act() flattens the observation and clips in float32 (scale·tanh + bias can
            # overshoot `high` by a rounding step), so the graph does the same.
            action = self.actor(observation.to(torch.float32).flatten(1))
            return torch.minimum(torch.maximum(action, self.low), self.high)

    return Policy().eval()


def _load_actor(path: Path, env_id: str | None) -> tuple[torch.nn.Module, dict[str, str], dict[str, Any]]:
    """The checkpoint's actor, checked against its env as `eval` checks it, and the env's shapes."""
    from agents.envs import env_spec
    from agents.evaluation import load_actor

    loaded = load_actor(path, env_id)
    config, payload, env = loaded.config, loaded.payload, loaded.env
    try:
        spec = env_spec(env, config.env_id)
        obs_space, act_space = env.observation_space, env.action_space
    finally:
        env.close()
    actor = loaded.actor
    meta = {
        "env_id": config.env_id,
        "obs_dim": str(spec.obs_dim), "act_dim": str(spec.act_dim),
        "observation_shape": json.dumps(list(obs_space.shape)),
        "observation_low": json.dumps(obs_space.low.reshape(-1).tolist()),
        "observation_high": json.dumps(obs_space.high.reshape(-1).tolist()),
        "action_shape": json.dumps(list(act_space.shape)),
        "action_low": json.dumps(spec.action_low.tolist()),
        "action_high": json.dumps(spec.action_high.tolist()),
    }
    return _policy_module(actor, spec.action_low, spec.action_high), meta, payload


def _provenance(path: Path, payload: dict[str, Any]) -> dict[str, str]:
    """Version, step and the eval return of the checkpoint (its own step's evaluation, if any)."""
    step = int(payload["counters"]["step"])
    meta = {"producer": "ddpg-tui", "ddpg_tui_version": __version__, "checkpoint": path.name,
            "checkpoint_step": str(step)}
    evaluation = _eval_at(path, step, payload)
    if evaluation is not None:
        meta["eval_step"], meta["eval_mean_return"], meta["eval_std_return"] = (
            str(evaluation[0]), repr(evaluation[1]), repr(evaluation[2]))
    return meta


def _eval_at(path: Path, step: int, payload: dict[str, Any]) -> tuple[int, float, float] | None:
    """The last in-run evaluation at or before `step`: from metrics.jsonl, else the saved best."""
    from agents.run_files import read_rows

    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    rows = [row for row in read_rows(run_dir, ("eval",)) if int(row.get("step", -1)) <= step]
    if rows:
        return int(rows[-1]["step"]), float(rows[-1]["mean"]), float(rows[-1]["std"])
    best = payload.get("best_eval")
    if isinstance(best, dict) and int(best.get("step", -1)) <= step:
        return int(best["step"]), float(best["mean"]), float(best["std"])
    return None


def _to_onnx(model: torch.nn.Module, obs_dim: int) -> Any:
    """torch.onnx.export (the dynamo exporter) with a dynamic batch dimension, quietly.

    The exporter prints progress, logs about torchvision, and warns about torch internals;
    none of that is the user's business, and under `-W error` a warning would abort.
    """
    import torch

    quiet = io.StringIO()
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (torch.zeros(1, obs_dim),), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes={"observation": {0: torch.export.Dim("batch")}}, dynamo=True, verbose=False)
    finally:
        onnx_logger.setLevel(level)
    return program.model_proto


def _write_atomically(path: Path, data: bytes) -> None:
    from agents.checkpoint import atomic_write_bytes

    try:
        atomic_write_bytes(path, data)
    except OSError as error:
        raise ExportError(f"-o: cannot write {path} ({error.strerror or error})") from None
