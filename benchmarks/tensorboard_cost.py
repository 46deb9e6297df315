"""What writing TensorBoard event files costs a run (#29): steps/s with tensorboard on against off.

    python benchmarks/tensorboard_cost.py                          # 5 rounds of 3,000 learning steps a preset
    python benchmarks/tensorboard_cost.py --rounds 1 --steps 600   # one short round: checks that it works
    python benchmarks/tensorboard_cost.py --label "loaded machine"

Each measurement is its own fresh process, so no run warms the next one's caches or allocator,
and within a round the two modes alternate (off, on, then on, off in the next round) so that a
drift in the machine's load falls on both. A run is the preset's config with one torch thread on
the CPU, a warm-up cut to --learning-starts random steps (it only fills the buffer) and no
evaluations or periodic saves during the measured stretch, in a run folder (metrics.jsonl is
written in both modes). The rate is wall-clock learning steps/s between the StepStats at the end
of the warm-up and the last one, so it includes every event write, the ones the trainer's
training clock leaves out.

With tensorboard on, the worker also times every TensorBoardLog.record and flush call (the
slowest one is the longest the training loop waited on TensorBoard) and opening the writer
(tensorboardX's import included), which happens once, before training starts. The time spent in
those calls, as a share of the measured stretch, is the direct cost, free of the noise between
processes that the steps/s comparison carries on a shared machine (the flush at the final save
falls after the stretch; tensorboardX's writer thread is not counted in it).

Every measurement is appended to benchmarks/results/tensorboard-cost.txt as it comes, and the
summary (median steps/s per mode, cost = 1 - on/off) after each preset. Goal: cost <= 2%.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESETS = ("pendulum", "lunar-lander-continuous")
RESULTS = ROOT / "benchmarks" / "results" / "tensorboard-cost.txt"


def worker(preset_name: str, tensorboard: bool, steps: int, learning_starts: int) -> dict[str, Any]:
    from agents import tensorboard_log
    from agents.events import StepStats
    from agents.trainer import Trainer
    from presets import load_preset

    config = load_preset(preset_name).config.replace(
        total_steps=learning_starts + steps, learning_starts=learning_starts, eval_every=0, eval_episodes=1,
        save_every=0, threads=1, device="cpu", tensorboard=tensorboard)
    marks: dict[int, float] = {}

    def sink(event: object) -> None:
        if isinstance(event, StepStats) and event.step not in marks:
            marks[event.step] = time.perf_counter()

    waits: list[float] = []

    def timed(method: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                waits.append(time.perf_counter() - start)
        return call

    log = tensorboard_log.TensorBoardLog
    log.record, log.flush = timed(log.record), timed(log.flush)  # type: ignore[method-assign]
    opened: list[float] = []
    plain_open = log.open.__func__  # type: ignore[attr-defined]

    def timed_open(cls: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return plain_open(cls, *args, **kwargs)
        finally:
            opened.append(time.perf_counter() - start)

    log.open = classmethod(timed_open)  # type: ignore[method-assign, assignment]
    with tempfile.TemporaryDirectory() as folder:
        Trainer(config, sink, Path(folder) / "run", save_replay_buffer=False, front_end="headless").run()
        events_files = len(list((Path(folder) / "run").glob("events.out.tfevents.*")))
    last = max(marks)
    window = marks[last] - marks[learning_starts]
    return {"steps_per_second": (last - learning_starts) / window, "in_calls_share": sum(waits) / window,
            "events_files": events_files, "calls": len(waits), "open_ms": 1000 * sum(opened),
            "slowest_call_ms": 1000 * max(waits, default=0.0),
            "p99_call_ms": 1000 * (statistics.quantiles(waits, n=100, method="inclusive")[98]
                                   if len(waits) >= 2 else 0.0)}


def spawn(preset: str, tensorboard: bool, steps: int, learning_starts: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", json.dumps([preset, tensorboard, steps, learning_starts])]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def append(line: str) -> None:
    print(line, flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as results:
        results.write(line + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3000, help="learning steps measured per run")
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--label", default="", help="said on every line, e.g. 'loaded machine'")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*json.loads(args.worker))))
        return
    if (args.learning_starts + args.steps) % 200:
        parser.error("--learning-starts + --steps must be a multiple of 200, where the trainer reports progress")
    label = f" [{args.label}]" if args.label else ""
    append(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}{label}: {args.rounds} rounds, {args.steps} learning steps, "
           f"learning_starts {args.learning_starts}, 1 torch thread, fresh process each")
    for preset in args.presets.split(","):
        rates: dict[bool, list[float]] = {False: [], True: []}
        for round_ in range(args.rounds):
            for tensorboard in ((False, True) if round_ % 2 == 0 else (True, False)):
                result = spawn(preset, tensorboard, args.steps, args.learning_starts)
                rates[tensorboard].append(result["steps_per_second"])
                calls = (f"; opening it (import included, before training) {result['open_ms']:.0f} ms; "
                         f"{result['calls']} record/flush calls, p99 {result['p99_call_ms']:.3f} ms, "
                         f"slowest {result['slowest_call_ms']:.2f} ms, all of them "
                         f"{100 * result['in_calls_share']:.3f}% of the measured time" if tensorboard else "")
                append(f"{preset} round {round_ + 1} tensorboard={'on' if tensorboard else 'off'}: "
                       f"{result['steps_per_second']:.1f} steps/s ({result['events_files']} events files){calls}")
        off, on = statistics.median(rates[False]), statistics.median(rates[True])
        append(f"{preset}{label}: median off {off:.1f}, on {on:.1f} steps/s; cost {100 * (1 - on / off):+.1f}% "
               f"over {args.rounds} round(s)")


if __name__ == "__main__":
    main()
