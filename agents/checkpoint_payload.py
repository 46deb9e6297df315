"""What a training checkpoint holds, and how a trainer is rebuilt from one.

`checkpoint.py` knows files (atomic writes, weights-only loads, checksums); this module
knows their contents: which keys a resume or an evaluation needs, which env a file may
name, and how every counter, generator and schedule is put back so that a resume from
an episode boundary continues exactly as the run would have.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from agents.checkpoint import CheckpointError, load_checkpoint
from agents.config import ConfigError, DDPGConfig
from agents.envs import EnvSpec, check_env_id_from_file
from agents.errors import first_line
from agents.replay_buffer import ReplayBuffer

FOR_EVALUATION = ("env_id", "obs_dim", "act_dim", "config", "agent.actor", "counters.step")
FOR_RESUME = (*FOR_EVALUATION, "agent.critic", "agent.actor_target", "agent.critic_target",
              "agent.actor_optimizer", "agent.critic_optimizer", "counters.episode", "counters.updates",
              "counters.elapsed", "noise", "rng.torch", "rng.action", "rng.noise")


class RunFinishedError(CheckpointError):
    """Resuming a run that has already done all its steps."""


def require_keys(payload: dict[str, Any], path: Path | str, keys: tuple[str, ...]) -> None:
    """One clear line for a checkpoint that passed its checksum but lacks what we need."""
    for dotted in keys:
        node: Any = payload
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise CheckpointError(f"checkpoint {path} lacks {dotted!r}; it was not written by a "
                                      "compatible ddpg-tui, so it cannot be used")
            node = node[part]


def read_config(payload: dict[str, Any], path: Path | str, *, env_id: str | None = None) -> DDPGConfig:
    """The checkpoint's config, with an env id that is safe to make.

    The stored id is accepted only when it imports nothing (see `check_env_id_from_file`);
    `env_id`, given by the user, replaces it, and may name a module of the user's choice.
    """
    try:
        config = DDPGConfig.from_mapping(payload["config"])
    except (ConfigError, TypeError) as error:
        raise CheckpointError(f"checkpoint {path} has an invalid config: {error}") from None
    trusted = env_id if env_id is not None else check_env_id_from_file(payload["env_id"], f"checkpoint {path}")
    return config.replace(env_id=trusted)


def check_fits_env(payload: dict[str, Any], path: Path | str, spec: EnvSpec) -> None:
    """Refuse a checkpoint for an env with other dims or other action bounds."""
    dims = (payload.get("obs_dim"), payload.get("act_dim"))
    if dims != (spec.obs_dim, spec.act_dim):
        raise CheckpointError(f"checkpoint {path} was trained on {payload['env_id']} with obs/action dims "
                              f"{dims[0]}/{dims[1]}, but the env has {spec.obs_dim}/{spec.act_dim}")
    actor = payload["agent"]["actor"]
    scale, bias = actor.get("action_scale"), actor.get("action_bias")
    if not isinstance(scale, torch.Tensor) or not isinstance(bias, torch.Tensor):
        raise CheckpointError(f"checkpoint {path} lacks the actor's action bounds")
    saved_low, saved_high = (bias - scale).numpy(), (bias + scale).numpy()
    if saved_low.shape != spec.action_low.shape or not (
            np.allclose(saved_low, spec.action_low, rtol=1e-5, atol=1e-6)
            and np.allclose(saved_high, spec.action_high, rtol=1e-5, atol=1e-6)):
        raise CheckpointError(f"checkpoint {path} was trained with action bounds {_bounds(saved_low, saved_high)}, "
                              f"but {spec.env_id} has {_bounds(spec.action_low, spec.action_high)}")


def _bounds(low: np.ndarray, high: np.ndarray) -> str:
    return "[" + ", ".join(f"{lo:g}..{hi:g}" for lo, hi in zip(low.tolist(), high.tolist(), strict=True)) + "]"


# Building ---------------------------------------------------------------------------------


class Restorable(Protocol):
    """What the payload needs of a trainer: its env's spec, its step, its replay buffer, and its own
    state_dict / load_state_dict (as torch modules have). Structural, so this module imports no trainer."""

    spec: EnvSpec
    step: int
    buffer: ReplayBuffer

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any], source: str = ...) -> list[str]: ...

    def restart_warmup(self) -> int: ...


def build_payload(trainer: Restorable, save_id: str) -> dict[str, Any]:
    """Everything a resume needs; `save_id` is shared with the replay buffer saved alongside."""
    return {**trainer.state_dict(), "save_id": save_id}


def new_save_id() -> str:
    return uuid.uuid4().hex


def buffer_payload(trainer: Restorable, save_id: str) -> dict[str, Any]:
    return {"replay_buffer": trainer.buffer.state_dict(), "step": trainer.step, "save_id": save_id}


# Restoring --------------------------------------------------------------------------------


def resumed_config(payload: dict[str, Any], path: Path, total_steps: int | None, env_id: str | None) -> DDPGConfig:
    config = read_config(payload, path, env_id=env_id)
    if total_steps is not None:
        config = config.replace(total_steps=total_steps)
    step = int(payload["counters"]["step"])
    if step >= config.total_steps:
        run = path.parent.parent if path.parent.name == "checkpoints" else path
        # --steps is the new total, so one at or below the step reached would train nothing.
        where = (f"already finished {step:,} of {config.total_steps:,} steps" if total_steps is None else
                 f"is at step {step:,}, past --steps {config.total_steps:,}")
        raise RunFinishedError(f"{run} {where}; to train on, "
                               f"give it more: ddpg-tui train --resume {run} --steps N, with N > {step:,}")
    return config


def restore(trainer: Restorable, payload: dict[str, Any], path: Path) -> list[str]:
    """Put the trainer back where the checkpoint left it; returns what the user should be told."""
    check_fits_env(payload, path, trainer.spec)
    notes = trainer.load_state_dict(payload, source=f"checkpoint {path}")
    return notes + _restore_buffer(trainer, payload, path)


def _restore_buffer(trainer: Restorable, payload: dict[str, Any], path: Path) -> list[str]:
    buffer_path = path.with_name("replay_buffer.pt")
    reason = ""
    if not buffer_path.exists():
        reason = f"{buffer_path.name} is missing"
    else:
        try:
            saved = load_checkpoint(buffer_path)
            require_keys(saved, buffer_path, ("replay_buffer", "step"))
            if saved.get("save_id") != payload.get("save_id") or int(saved["step"]) != trainer.step:
                reason = f"{buffer_path.name} was saved at step {int(saved['step']):,}, not with this checkpoint"
            else:
                trainer.buffer.load_state_dict(saved["replay_buffer"])
        except (CheckpointError, KeyError, TypeError, ValueError) as error:
            reason = f"{buffer_path.name} is unusable: {first_line(error)}"
    if not reason:
        return []
    warmup = trainer.restart_warmup()
    return [f"resuming without the replay buffer ({reason}); collecting {warmup:,} steps with the policy "
            "before updating again"]
