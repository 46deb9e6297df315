"""What Ray Tune costs a sweep, against the same runs as plain `ddpg-tui train` processes.

    python benchmarks/sweep_overhead.py                 # the full run (see benchmarks/README.md for its length)
    python benchmarks/sweep_overhead.py --steps 2000    # a smoke run: the same measurements, tiny trials

Measures, each command in its own process tree (Linux: memory comes from /proc):
  (a) Ray's fixed start-up: from launching `ddpg-tui sweep --headless` to the first trial's first step
      (its run folder's config.toml, written just before the first env step); the same for one plain
      `ddpg-tui train --headless` beside it, which is what a run costs to start without Ray. Target <= 15 s.
  (b) running cost: 4 Pendulum trials (the pendulum preset, 1 config x 4 seeds) with --jobs 2, against the
      same 4 runs as plain `ddpg-tui train --headless --set threads=1` processes, 2 at a time. Start-up is
      excluded on both sides: the sweep is timed from its first trial's first step to its summary.csv, the
      plain runs from the first run's first step to the end of the last. Target: ratio <= 1.10.
  (c) scaling: the same sweep with --jobs 1; trials per hour with 2 jobs over 1 job. Target >= 1.7.
  (d) peak RSS of the sweep's driver, of all of Ray's processes together (GCS, raylet, workers: the
      driver's process tree), and of the largest single worker; and of one plain train process.

Rounds alternate sweep and plain runs, so drift on a busy machine spreads over both. Results go to
benchmarks/results/sweep-overhead.txt (or --out) and are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")
SEEDS = (0, 1, 2, 3)


def command() -> list[str]:
    installed = shutil.which("ddpg-tui")
    return [installed] if installed else [sys.executable, "-m", "ddpg_tui"]


# Memory, from /proc ----------------------------------------------------------------------------------


def _rss_and_parent(pid: int) -> tuple[int, int] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[21]) * PAGE, int(fields[1])  # rss pages, ppid


def process_tree(root: int) -> dict[int, int]:
    """RSS in bytes of `root` and every process below it."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := _rss_and_parent(int(entry))) is not None:
            table[int(entry)] = info
    children: dict[int, list[int]] = {}
    for pid, (_, parent) in table.items():
        children.setdefault(parent, []).append(pid)
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            tree[pid] = table[pid][0]
            todo += children.get(pid, [])
    return tree


@dataclass
class MemoryWatch:
    """Samples a process tree's RSS four times a second while a command runs."""

    root: int
    driver: int = 0
    total: int = 0
    largest_child: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> MemoryWatch:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            tree = process_tree(self.root)
            if not tree:
                continue
            self.driver = max(self.driver, tree.get(self.root, 0))
            self.total = max(self.total, sum(tree.values()))
            others = [rss for pid, rss in tree.items() if pid != self.root]
            self.largest_child = max(self.largest_child, max(others, default=0))

    def stop(self) -> None:
        self._stop.set()


def mb(value: int) -> str:
    return f"{value / 2**20:,.0f} MB"


# The runs ---------------------------------------------------------------------------------------------


def settings(steps: int | None) -> list[str]:
    """The pendulum preset; a smoke run shrinks the steps and the evaluations with them."""
    if not steps:
        return []
    every = max(200, steps // 10)
    return ["--steps", str(steps), "--set", f"eval_every={every}", "--set", f"save_every={every}"]


@dataclass
class Timing:
    launched: float
    first_step: float
    end: float
    memory: MemoryWatch

    @property
    def startup(self) -> float:
        return self.first_step - self.launched

    @property
    def running(self) -> float:
        return self.end - self.first_step


def wait_for_file(pattern_dir: Path, pattern: str, proc: subprocess.Popen, timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pattern_dir.exists() and any(pattern_dir.glob(pattern)):
            return time.monotonic()
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} ended with {proc.returncode} before {pattern}: "
                               f"{proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.02)
    raise TimeoutError(pattern)


def run_sweep(workdir: Path, name: str, jobs: int, steps: int | None) -> Timing:
    args = [*command(), "sweep", "--preset", "pendulum", "--seeds", "0-3", "--jobs", str(jobs), "--name", name,
            "--headless", *settings(steps)]
    launched = time.monotonic()
    proc = subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    memory = MemoryWatch(proc.pid).start()
    sweep_dir = workdir / "runs" / "sweeps" / name
    first = wait_for_file(sweep_dir, "*-seed*/config.toml", proc)
    summary = wait_for_file(sweep_dir, "summary.csv", proc, timeout=7200)
    code = proc.wait()
    memory.stop()
    if code != 0:
        raise RuntimeError(f"sweep exited with {code}: {proc.stderr.read().decode() if proc.stderr else ''}")
    return Timing(launched, first, summary, memory)


def run_plain(workdir: Path, tag: str, steps: int | None, parallel: int = 2) -> tuple[Timing, float]:
    """The same 4 runs as plain processes, `parallel` at a time; returns the timing and the first one's start-up."""
    pending = list(SEEDS)
    running: list[tuple[subprocess.Popen, MemoryWatch]] = []
    launched = time.monotonic()
    first_dir = workdir / "runs" / f"{tag}-seed{SEEDS[0]}"
    first_step: float | None = None
    peak = MemoryWatch(0)
    while pending or running:
        while pending and len(running) < parallel:
            seed = pending.pop(0)
            proc = subprocess.Popen([*command(), "train", "--preset", "pendulum", "--seed", str(seed), "--headless",
                                     "--set", "threads=1", "--run-dir", str(workdir / "runs" / f"{tag}-seed{seed}"),
                                     *settings(steps)], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            running.append((proc, MemoryWatch(proc.pid).start()))
        if first_step is None and (first_dir / "config.toml").exists():
            first_step = time.monotonic()
        for proc, memory in list(running):
            if proc.poll() is not None:
                memory.stop()
                peak.driver = max(peak.driver, memory.total)
                running.remove((proc, memory))
                if proc.returncode != 0:
                    raise RuntimeError(f"train exited with {proc.returncode}: {proc.stderr.read().decode()}")
        time.sleep(0.02)
    assert first_step is not None
    return Timing(launched, first_step, time.monotonic(), peak), first_step - launched


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, help="steps per trial (default: the preset's 20,000)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default: 2)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sweep-overhead.txt")
    args = parser.parse_args()

    started = time.monotonic()
    sweep2, plain, sweep1, startups = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="sweep-overhead-") as tmp:
        workdir = Path(tmp)
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}/{args.rounds}: sweep --jobs 2", flush=True)
            sweep2.append(run_sweep(workdir, f"jobs2-r{round_}", 2, args.steps))
            print(f"round {round_ + 1}/{args.rounds}: 4 plain train processes, 2 at a time", flush=True)
            timing, startup = run_plain(workdir, f"plain-r{round_}", args.steps)
            plain.append(timing)
            startups.append(startup)
            print(f"round {round_ + 1}/{args.rounds}: sweep --jobs 1", flush=True)
            sweep1.append(run_sweep(workdir, f"jobs1-r{round_}", 1, args.steps))

    def med(values: list[float]) -> float:
        return statistics.median(values)

    ratio = med([s.running for s in sweep2]) / med([p.running for p in plain])
    scaling = med([s.running for s in sweep1]) / med([s.running for s in sweep2])
    startup = med([s.startup for s in sweep2 + sweep1])
    steps = args.steps or 20000
    def each(timings: list[Timing], attribute: str) -> str:
        return ", ".join(f"{getattr(t, attribute):.1f}" for t in timings)

    two, one, alone = (med([t.running for t in runs]) for runs in (sweep2, sweep1, plain))
    lines = [
        f"sweep_overhead.py: 4 Pendulum trials x {steps:,} steps (pendulum preset, 1 thread per trial), "
        f"{args.rounds} round(s), {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores",
        "",
        f"(a) start-up, command to the first trial's first step: sweep {startup:.1f} s "
        f"(each: {each(sweep2 + sweep1, 'startup')}); plain train {med(startups):.1f} s; "
        f"target <= 15 s {'met' if startup <= 15 else 'NOT met'}",
        f"(b) running, start-up excluded: sweep --jobs 2 {two:.1f} s ({each(sweep2, 'running')}), "
        f"plain 2 at a time {alone:.1f} s ({each(plain, 'running')}); ratio {ratio:.2f}, "
        f"target <= 1.10 {'met' if ratio <= 1.10 else 'NOT met'}",
        f"(c) scaling: --jobs 1 {one:.1f} s, --jobs 2 {two:.1f} s; trials/hour with 2 jobs "
        f"{3600 * 4 / two:.0f} against {3600 * 4 / one:.0f} with 1: {scaling:.2f}x, "
        f"target >= 1.7 {'met' if scaling >= 1.7 else 'NOT met'}",
        f"(d) peak RSS: sweep driver {mb(max(s.memory.driver for s in sweep2))}, driver + all of Ray's processes "
        f"{mb(max(s.memory.total for s in sweep2))} (--jobs 1: {mb(max(s.memory.total for s in sweep1))}), "
        f"largest single Ray process {mb(max(s.memory.largest_child for s in sweep2))}; "
        f"one plain train process {mb(max(p.memory.driver for p in plain))}",
        f"whole benchmark: {time.monotonic() - started:.0f} s",
    ]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
