"""The learning-rate schedule's horizon, kept as state so that resuming never makes the rate jump."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LinearDecay:
    """A factor that falls linearly from `start_fraction` at `start_step` to 0 at `end_step`.

    A fresh run decays from 1 at step 0 to 0 at total_steps (rl-zoo's `lin_` schedules).
    Extending a run (a larger total_steps, on resume or live) does not restart the decay:
    it goes on from the factor reached so far down to 0 at the new total, so the rate is
    continuous. A run that had decayed to 0 stays at 0.
    """

    start_step: int
    start_fraction: float
    end_step: int

    @classmethod
    def over(cls, total_steps: int) -> LinearDecay:
        return cls(0, 1.0, total_steps)

    def __call__(self, step: int) -> float:
        if step >= self.end_step:
            return 0.0
        if step <= self.start_step:
            return self.start_fraction
        return self.start_fraction * (self.end_step - step) / (self.end_step - self.start_step)

    def retargeted(self, step: int, end_step: int) -> LinearDecay:
        """From the factor at `step`, down to 0 at `end_step`."""
        return LinearDecay(step, self(step), end_step)

    def after_change(self, step: int, was_linear: bool, is_linear: bool, end_step: int) -> LinearDecay:
        """The decay after a live change at `step`: a schedule switched to linear starts from the full rate
        (no jump), a new total_steps keeps the rate reached and falls to 0 at the new end."""
        if is_linear and not was_linear:
            return LinearDecay(step, 1.0, end_step)
        return self.retargeted(step, end_step) if end_step != self.end_step else self

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> LinearDecay:
        return cls(int(state["start_step"]), float(state["start_fraction"]), int(state["end_step"]))
