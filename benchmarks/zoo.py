"""The peer: an SB3 DDPG or TD3 model with rl-baselines3-zoo's hyperparameters for an env.

The values are copied from rl_zoo3 2.9.2's hyperparams/ddpg.yml and td3.yml, which give these envs
the same entries in both files; where the zoo says nothing, SB3's own defaults hold (lr 1e-3,
buffer 1M, learning_starts 100, batch 256, tau 0.005, gamma 0.99, [400, 300]; TD3's policy_delay 2,
target_policy_noise 0.2, target_noise_clip 0.5). Shared by time_to_solve.py and sb3_learning.py.
"""

from __future__ import annotations

from typing import Any

_TUNED = {"gamma": 0.98, "buffer_size": 200_000, "learning_starts": 10_000, "noise": ("normal", 0.1),
          "learning_rate": 1e-3, "net_arch": [400, 300]}
ZOO: dict[str, dict[str, Any]] = {
    "Pendulum-v1": _TUNED,
    "MountainCarContinuous-v0": {"noise": ("ornstein-uhlenbeck", 0.5)},
    "LunarLanderContinuous-v3": _TUNED,
    "BipedalWalker-v3": _TUNED,
}
ALGORITHMS = ("ddpg", "td3")


def zoo_model(algo: str, env_id: str, env: Any, seed: int) -> Any:
    """An untrained SB3 model of `algo` on `env` with the zoo's config for `env_id`, on the CPU."""
    import numpy as np
    from stable_baselines3 import DDPG, TD3
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    if env_id not in ZOO:
        raise SystemExit(f"no rl-zoo config here for {env_id}; known: {', '.join(ZOO)}")
    zoo = dict(ZOO[env_id])
    act_dim = env.action_space.shape[0]
    kind, std = zoo.pop("noise")
    noise_class = NormalActionNoise if kind == "normal" else OrnsteinUhlenbeckActionNoise
    noise = noise_class(mean=np.zeros(act_dim), sigma=std * np.ones(act_dim))
    net_arch = zoo.pop("net_arch", [400, 300])
    model_class = {"ddpg": DDPG, "td3": TD3}[algo]
    return model_class("MlpPolicy", env, action_noise=noise, policy_kwargs={"net_arch": net_arch}, seed=seed,
                       device="cpu", verbose=0, **zoo)
