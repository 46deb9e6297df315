"""A fixed-capacity ring of transitions in preallocated float32 numpy arrays."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    dones: torch.Tensor  # 1.0 where the episode *terminated*; truncation is 0.0


class ReplayBuffer:
    """(s, a, r, s', d) transitions; add is O(1), sampling is uniform with replacement.

    No Python object is kept per transition: memory is `capacity * bytes_per_transition`.
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, seed: int = 0,
                 device: torch.device | str = "cpu") -> None:
        self.capacity = int(capacity)
        self.device = torch.device(device)
        self.obs = np.zeros((self.capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((self.capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((self.capacity, act_dim), dtype=np.float32)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.dones = np.zeros(self.capacity, dtype=np.float32)
        self.position = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    @property
    def bytes_per_transition(self) -> int:
        return sum(array[0].nbytes for array in self._arrays().values())

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in self._arrays().values())

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray,
            terminated: bool) -> None:
        i = self.position
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = next_obs
        self.dones[i] = terminated
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        index = self.rng.integers(0, self.size, size=batch_size)
        return Batch(*(self._to_tensor(array[index]) for array in
                       (self.obs, self.actions, self.rewards, self.next_obs, self.dones)))

    def _to_tensor(self, array: np.ndarray) -> torch.Tensor:
        # Fancy indexing already made a fresh array, so sharing its memory is safe.
        tensor = torch.from_numpy(array)
        return tensor if self.device.type == "cpu" else tensor.to(self.device, non_blocking=True)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"obs": self.obs, "actions": self.actions, "rewards": self.rewards,
                "next_obs": self.next_obs, "dones": self.dones}

    # Resume ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The filled part only, as tensors (loadable with `weights_only=True`).

        The tensors share memory with the ring, not copies of it: saving a full buffer must
        not double the process's memory. Save them before the next `add`.
        """
        state: dict[str, Any] = {name: torch.from_numpy(array[: self.size])
                                 for name, array in self._arrays().items()}
        state.update(position=self.position, size=self.size, capacity=self.capacity,
                     rng=self.rng.bit_generator.state)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = int(state["size"])
        if size > self.capacity:
            raise ValueError(f"saved buffer holds {size} transitions, more than capacity {self.capacity}")
        for name, array in self._arrays().items():
            saved = state[name].numpy()
            if saved.shape[1:] != array.shape[1:]:
                raise ValueError(f"saved buffer {name} has shape {saved.shape[1:]}, expected {array.shape[1:]}")
            array[:size] = saved
        self.size = size
        self.position = int(state["position"]) % self.capacity
        self.rng.bit_generator.state = state["rng"]
