"""What a training checkpoint holds, and how a trainer is rebuilt from one.

`checkpoint.py` knows files (atomic writes, weights-only loads, checksums); this module
knows their contents: which keys a resume or an evaluation needs, which env a file may
name, and how every counter, generator and schedule is put back so that a resume from
an episode boundary continues exactly as the run would have.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from agents.checkpoint import CheckpointError, load_checkpoint
from agents.config import ConfigError, DDPGConfig
from agents.envs import EnvSpec, check_env_id_from_file
from agents.errors import first_line
from agents.events import EvalResult
from agents.schedules import LinearDecay

if TYPE_CHECKING:
    from agents.trainer import Trainer

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


def build_payload(trainer: Trainer, save_id: str) -> dict[str, Any]:
    """Everything a resume needs; `save_id` is shared with the replay buffer saved alongside."""
    env_rng = getattr(trainer.env.unwrapped, "np_random", None)
    best = trainer.best_eval
    return {
        "env_id": trainer.spec.env_id,
        "obs_dim": trainer.spec.obs_dim,
        "act_dim": trainer.spec.act_dim,
        "config": trainer.config.to_dict(),
        "agent": trainer.agent.state_dict(),
        "counters": {"step": trainer.step, "episode": trainer.episode, "updates": trainer.updates,
                     "elapsed": trainer.clock.elapsed, "learning_from": trainer.learning_from},
        "best_eval": None if best is None else {"step": best.step, "mean": best.mean, "std": best.std},
        "noise": trainer.noise.state_dict(),
        "lr_decay": trainer.lr_decay.state_dict(),
        # A save mid-episode cannot resume that episode (the env's own state is not saved),
        # so the resume starts a new one and says so.
        "at_episode_start": trainer.at_episode_start,
        "save_id": save_id,
        "rng": {
            "torch": torch.get_rng_state(),
            "action": trainer.action_rng.bit_generator.state,
            "noise": trainer.noise_rng.bit_generator.state,
            "env": env_rng.bit_generator.state if env_rng is not None else None,
            # A CUDA generator's state is a different thing from a CPU one's: the device says which.
            "target_noise": {"device": trainer.agent.device.type,
                             "state": trainer.agent.target_noise_generator.get_state()},
        },
    }


def new_save_id() -> str:
    return uuid.uuid4().hex


def buffer_payload(trainer: Trainer, save_id: str) -> dict[str, Any]:
    return {"replay_buffer": trainer.buffer.state_dict(), "step": trainer.step, "save_id": save_id}


# Restoring --------------------------------------------------------------------------------


def resumed_config(payload: dict[str, Any], path: Path, total_steps: int | None, env_id: str | None) -> DDPGConfig:
    config = read_config(payload, path, env_id=env_id)
    if total_steps is not None:
        config = config.replace(total_steps=total_steps)
    step = int(payload["counters"]["step"])
    if step >= config.total_steps:
        run = path.parent.parent if path.parent.name == "checkpoints" else path
        raise RunFinishedError(f"{run} already finished {step:,} of {config.total_steps:,} steps; to train on, "
                               f"give it more: ddpg-tui train --resume {run} --steps N, with N > {step}")
    return config


def restore(trainer: Trainer, payload: dict[str, Any], path: Path) -> list[str]:
    """Put the trainer back where the checkpoint left it; returns what the user should be told."""
    notes: list[str] = []
    check_fits_env(payload, path, trainer.spec)
    try:
        trainer.agent.load_state_dict(payload["agent"])
    except (RuntimeError, KeyError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} does not fit the networks: {first_line(error)}") from None
    counters = payload["counters"]
    trainer.step, trainer.episode = int(counters["step"]), int(counters["episode"])
    trainer.updates = int(counters["updates"])
    trainer.clock.elapsed = float(counters["elapsed"])
    trainer.learning_from = int(counters.get("learning_from", trainer.config.learning_starts))
    if payload.get("best_eval"):
        best = payload["best_eval"]
        trainer.best_eval = EvalResult(int(best["step"]), float(best["mean"]), float(best["std"]), ())
    try:
        trainer.noise.load_state_dict(payload["noise"])
        rng = payload["rng"]
        torch.set_rng_state(rng["torch"])
        trainer.action_rng.bit_generator.state = rng["action"]
        trainer.noise_rng.bit_generator.state = rng["noise"]
        if rng.get("env") is not None:
            trainer.env.reset(seed=trainer.config.seed)  # creates the env's generator ...
            trainer.env.unwrapped.np_random.bit_generator.state = rng["env"]  # ... then restores it
        notes += _restore_target_noise(trainer, rng.get("target_noise"))
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"checkpoint {path} has unreadable generator state: {first_line(error)}") from None
    trainer.mark_env_seeded()

    notes += _restore_lr_decay(trainer, payload)
    if not payload.get("at_episode_start", True):
        notes.append(f"the checkpoint was saved mid-episode at step {trainer.step:,}; that episode restarts "
                     "from a reset, so this resume is not bit-exact")
    notes += _restore_buffer(trainer, payload, path)
    return notes


def _restore_target_noise(trainer: Trainer, saved: Any) -> list[str]:
    """Continue TD3's target-noise stream; a checkpoint from before it was saved (or from
    another device type) leaves the generator seeded from the run's seed, as a new run's is."""
    generator = trainer.agent.target_noise_generator
    if isinstance(saved, dict) and saved.get("device") == trainer.agent.device.type:
        generator.set_state(saved["state"])
        return []
    if trainer.config.target_noise <= 0:
        return []  # nothing draws from it, so nothing differs
    why = ("the checkpoint predates its saved state" if not isinstance(saved, dict)
           else f"it was saved on {saved.get('device')} and this run is on {trainer.agent.device.type}")
    return [f"TD3's target noise restarts from the run's seed ({why}), so this resume is not bit-exact"]


def _restore_lr_decay(trainer: Trainer, payload: dict[str, Any]) -> list[str]:
    saved_total = int(payload["config"]["total_steps"])
    decay = (LinearDecay.from_state_dict(payload["lr_decay"]) if isinstance(payload.get("lr_decay"), dict)
             else LinearDecay.over(saved_total))  # checkpoints from before the horizon was stored
    if trainer.config.total_steps != decay.end_step:
        decay = decay.retargeted(trainer.step, trainer.config.total_steps)
    trainer.lr_decay = decay
    if trainer.config.lr_schedule == "linear" and decay(trainer.step) == 0.0:
        return [f"lr_schedule=linear had decayed the learning rates to 0 by step {trainer.step:,}; they stay 0, "
                "so the extra steps collect data without learning (switch lr_schedule to constant with h in the app)"]
    return []


def _restore_buffer(trainer: Trainer, payload: dict[str, Any], path: Path) -> list[str]:
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
    warmup = max(trainer.config.learning_starts, trainer.config.batch_size)
    trainer.learning_from = trainer.step + warmup
    return [f"resuming without the replay buffer ({reason}); collecting {warmup:,} steps with the policy "
            "before updating again"]
