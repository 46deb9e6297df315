"""Choose torch's thread count while training runs, by timing the training itself.

No fixed count is right for small networks on a few cores. Measured on the 2-core machine
(the DDPG update, 400x300, batch 256): idle, 2 threads gave 151 updates/s and 1 thread 111;
beside one busy process, 1 thread gave 76 and 2 threads 2 (OpenMP's threads spin-wait for a
partner that the scheduler has put aside). OpenMP's passive wait (56 idle) and shorter spin
counts (GOMP_SPINCOUNT=10000: 140 idle, 30 loaded) lose one case or the other. So when the
config says `threads = 0`, the trainer tries the candidates on the run's own steps and keeps
the fastest, and tries again when the speed drops (a process started beside it) or, ever more
rarely, on a schedule (that process may have ended).

The cost of trying: a try lasts up to one window of training time, and a losing count does
fewer steps in it. A try that is clearly losing (after a quarter window, under 0.8 of the kept
count's rate) ends there, so beside a busy process a try of 2 threads costs a quarter window,
not a whole one; short runs (a few thousand steps) are where that matters. Between tries the
kept count runs for a hold that doubles each time it wins again, up to MAX_HOLD windows, so a
lost try costs at most about 1/MAX_HOLD of the time; after the first comparison the hold starts
at FIRST_HOLD windows, so that a run of a few thousand steps is not spent on tries.

Thread counts change a run's floating-point sums in the last bits, so a run at `threads = 0`
is not bit-for-bit repeatable; each switch is recorded (a "threads" row in metrics.jsonl)
and a fixed `threads = N` gives bit-exact reruns.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW_SECONDS = 1.0  # of training time per measurement: long enough to span an episode's reset
MAX_HOLD = 32  # windows between scheduled tries, at most
SLOWDOWN = 0.6  # a window this much slower than the kept count's rate means the machine changed
FIRST_HOLD = 4  # windows after the first comparison: a short run should not spend itself on tries
EARLY_FRACTION = 0.25  # of a window: how long a try runs before it may be judged early
EARLY_RATIO = 0.8  # a try slower than this share of the kept count's rate by then has lost


@dataclass(frozen=True, slots=True)
class ThreadSwitch:
    threads: int
    rates: dict[int, float]  # steps per second of training time, by thread count, as last measured
    reason: str


class ThreadTuner:
    """Feed it (step, training time) after every step; it answers with a thread count to switch to.

    Pure bookkeeping (no torch, no clock of its own), so it is tested with made-up times.
    """

    def __init__(self, candidates: tuple[int, ...], current: int, window: float = WINDOW_SECONDS) -> None:
        if len(candidates) < 2:
            raise ValueError("the tuner needs at least two candidates")
        self.candidates = candidates
        self.window = window
        self.rates: dict[int, float] = {}
        self._window_start: tuple[int, float] | None = None
        self.start_from(current)
        self._hold = 1  # windows to run the kept count before the next scheduled try
        self._compared = False  # every candidate measured once
        self._held = 0

    def start_from(self, count: int) -> None:
        """Begin the first comparison at `count` (the likely winner, from agents.cpu_use): before any step."""
        if count not in self.candidates:
            raise ValueError(f"{count} is not one of the candidates {self.candidates}")
        if self._window_start is not None:
            raise RuntimeError("the tuner has already started timing")
        self.kept = count  # the count that won the last comparison
        self.current = count  # the count running now (kept, or one being tried)
        self._trying: list[int] = [c for c in self.candidates if c != count]  # first: compare all

    @property
    def started(self) -> bool:
        return self._window_start is not None

    def observe(self, step: int, elapsed: float) -> ThreadSwitch | None:
        if self._window_start is None:
            self._window_start = (step, elapsed)
            return None
        start_step, start_time = self._window_start
        spent = elapsed - start_time
        if spent < self.window and not self._losing_try(step - start_step, spent):
            return None
        rate = (step - start_step) / spent
        self._window_start = (step, elapsed)
        return self._window_done(rate)

    def _losing_try(self, steps: int, spent: float) -> bool:
        kept_rate = self.rates.get(self.kept)
        if self.current == self.kept or kept_rate is None or spent < EARLY_FRACTION * self.window:
            return False
        return steps / spent < EARLY_RATIO * kept_rate

    def _window_done(self, rate: float) -> ThreadSwitch | None:
        if self.current != self.kept:  # a try has finished
            self.rates[self.current] = rate
            return self._after_try()
        previous = self.rates.get(self.kept)
        self.rates[self.kept] = rate
        if self._trying:  # the start: every candidate gets one window
            return self._try(self._trying.pop(0), "first measurement")
        if previous is not None and rate < SLOWDOWN * previous:
            self._hold = 1
            return self._try(self._next_candidate(), f"speed fell from {previous:.0f} to {rate:.0f} steps/s")
        self._held += 1
        if self._held >= self._hold:
            return self._try(self._next_candidate(), "scheduled check")
        return None

    def _after_try(self) -> ThreadSwitch | None:
        if self._trying:
            return self._try(self._trying.pop(0), "first measurement")
        best = max(self.rates, key=lambda count: self.rates[count])
        first, self._compared = not self._compared, True
        if best == self.kept:
            self._hold = FIRST_HOLD if first else min(2 * self._hold, MAX_HOLD)
        else:
            self._hold = FIRST_HOLD if first else 1
            self.kept = best
        self._held = 0
        self.current = self.kept
        return ThreadSwitch(self.kept, dict(self.rates), "kept the fastest")

    def _next_candidate(self) -> int:
        others = [c for c in self.candidates if c != self.kept]
        # The one measured longest ago would be best; the one with the highest last rate is close and simpler.
        return max(others, key=lambda count: self.rates.get(count, float("inf")))

    def _try(self, count: int, reason: str) -> ThreadSwitch:
        self.current = count
        return ThreadSwitch(count, dict(self.rates), reason)
