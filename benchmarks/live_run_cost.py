"""What watching a run costs it (#27): headless, detached, detached with a client attached, and the app's dashboard.

    python benchmarks/live_run_cost.py                     # 3 rounds of the four modes, pendulum preset, 1 thread
    python benchmarks/live_run_cost.py --rounds 1 --steps 4000 --from-step 1000     # one short round
    python benchmarks/live_run_cost.py --history-only      # attaching to a 1M-step run: time to its full history

Every mode is the real command, started in its own tmux session of 120x40 (the user's terminal), one torch
thread, the pendulum preset as shipped (evaluations and periodic saves included), the same seed:
- headless: `ddpg-tui train --headless` (rich's progress bar in the pane);
- detached: `ddpg-tui train --detach` (no terminal; nothing attached);
- attached: the same detached run with `ddpg-tui attach RUN` open in the pane (another process) from its start;
- dashboard: `ddpg-tui train` (the app trains in its worker thread and draws the dashboard).
Rounds alternate the order of the modes, so that a drift in the machine's load falls on all of them.

The clock is the run's own: the wall times TensorBoard's event file holds for `rollout/ep_rew_mean` at the
episode ends at --from-step and --steps (tensorboardX stamps each scalar when the trainer records it), read
back with TensorBoard's `EventAccumulator`. So no poller shares the CPU with the run, and a start-up that
differs between modes (the app's import of Textual, the detach's fork) is left out. The ratio of a mode is
headless seconds / its seconds over that stretch: its steps/s as a share of headless.

Goals: detached >= 0.98 of headless; attached costs <= 5% over detached; dashboard >= 0.95 of headless.
Each measurement is appended to benchmarks/results/live-run-cost.txt as it comes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "live-run-cost.txt"
MODES = ("headless", "detached", "attached", "dashboard")
SIZE = ("-x", "120", "-y", "40")


def ddpg_tui() -> str:
    found = shutil.which("ddpg-tui", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("ddpg-tui is not installed in this Python's environment")
    return found


def tmux(*args: str) -> None:
    subprocess.run(["tmux", *args], check=True, capture_output=True)


def kill_session(name: str) -> None:
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def episode_wall_times(run_dir: Path) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    times: dict[int, float] = {}
    for events in sorted(run_dir.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        if "rollout/ep_rew_mean" in accumulator.Tags()["scalars"]:
            times.update({e.step: e.wall_time for e in accumulator.Scalars("rollout/ep_rew_mean")})
    return times


def finished(run_dir: Path, steps: int) -> bool:
    """The run's last evaluation is written and no process holds its folder."""
    from agents.run_files import RunLockedError, read_rows, refuse_if_locked

    try:
        rows = read_rows(run_dir, ("eval",))
    except OSError:
        return False
    if not any(row["step"] >= steps for row in rows):
        return False
    try:
        refuse_if_locked(run_dir)
    except RunLockedError:
        return False
    return True


def stop_detached(run_dir: Path) -> None:
    """SIGTERM to the run's process (it saves and ends), and wait for it to let go of the folder."""
    import json
    import os
    import signal

    from agents.run_files import RunLockedError, refuse_if_locked

    try:
        os.kill(int(json.loads((run_dir / "control.json").read_text())["pid"]), signal.SIGTERM)
    except (OSError, KeyError, ValueError):
        return

    def let_go() -> bool:
        try:
            refuse_if_locked(run_dir)
        except RunLockedError:
            return False
        return True
    wait(let_go, 60, "the detached run to end")


def wait(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.25)


def measure(mode: str, steps: int, from_step: int, seed: int, folder: Path) -> float:
    """Seconds of the run from the episode end at from_step to the one at steps."""
    run_dir = folder / mode
    train = [ddpg_tui(), "train", "--preset", "pendulum", "--steps", str(steps), "--seed", str(seed),
             "--set", "threads=1", "--run-dir", str(run_dir)]
    session = f"bench-{mode}-{int(time.time() * 1000) % 100000}"
    try:
        if mode == "headless":
            tmux("new-session", "-d", "-s", session, *SIZE, " ".join([*train, "--headless"]) + "; sleep 600")
        elif mode == "dashboard":
            tmux("new-session", "-d", "-s", session, *SIZE, " ".join(train))
        else:
            subprocess.run([*train, "--detach"], check=True, capture_output=True)
            if mode == "attached":
                wait(lambda: (run_dir / "control.json").exists(), 60, "the detached run's channel")
                tmux("new-session", "-d", "-s", session, *SIZE, f"{ddpg_tui()} attach {run_dir}")
        wait(lambda: finished(run_dir, steps), 900, f"the {mode} run to finish")
    finally:
        kill_session(session)
    times = episode_wall_times(run_dir)
    return times[steps] - times[from_step]


def history_time(steps: int) -> str:
    """Attaching to a run of `steps` steps: its metrics.jsonl read, folded, and the dashboard's first draw of it.

    The rows are the trainer's own (RunFiles.record of real events), as pendulum's preset writes them: an
    episode and an update row every 200 steps, an evaluation of 10 episodes every 2,000, a save every 5,000.
    """
    import asyncio
    from dataclasses import replace

    from agents.config import DDPGConfig
    from agents.events import EpisodeEnd, EvalResult, Saved, StepStats, TrainerState, UpdateStats
    from agents.run_files import RunFiles, read_history
    from ddpg_tui.request import TrainingRequest
    from ddpg_tui.ui.app import DDPGApp
    from ddpg_tui.ui.session import FixedSession, TrainingSession

    with tempfile.TemporaryDirectory() as folder:
        files = RunFiles(Path(folder) / "run")
        files.create(DDPGConfig(env_id="Pendulum-v1", total_steps=2 * steps, device="cpu"))
        for step in range(200, steps + 1, 200):
            files.record(EpisodeEnd(step, step // 200, -150.0 - step % 7, 200))
            files.record(UpdateStats(step, step, 1.0, 2.0, -3.0))
            if step % 2000 == 0:
                files.record(EvalResult(step, -150.0, 10.0, (-150.0,) * 10, False, (200,) * 10))
            if step % 5000 == 0:
                files.record(Saved(step, files.latest, "periodic"))
        files.close()
        size = files.metrics_path.stat().st_size
        start = time.perf_counter()
        history = read_history(files.metrics_path, steps)
        read = time.perf_counter() - start
        session = TrainingSession(TrainingRequest(config=None, run_dir=files.run_dir))
        session.load_history(history)
        snapshot = replace(session.snapshot(), env_id="Pendulum-v1", state=TrainerState.TRAINING,
                           progress=StepStats(step=steps, total_steps=2 * steps, episode=steps // 200,
                                              steps_per_second=500.0, buffer_size=200_000,
                                              buffer_capacity=200_000, noise_sigma=0.1, elapsed=2000.0,
                                              updates=steps))
        folded = time.perf_counter() - start

        async def first_draw() -> float:
            app = DDPGApp(session=FixedSession(snapshot))
            began = time.perf_counter()
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.pause()  # the dashboard's first refresh: every panel and plot drawn from the snapshot
                return time.perf_counter() - began
        drawn = asyncio.run(first_draw())
        counts = f"{len(snapshot.episode_steps):,} episodes, {len(snapshot.loss_updates):,} updates, " \
                 f"{len(snapshot.evals):,} evaluations"
    return (f"history of a {steps:,}-step run ({size / 2**20:.1f} MiB metrics.jsonl; {counts}): read in "
            f"{read:.2f} s, folded into the dashboard's snapshot by {folded:.2f} s; the app's dashboard "
            f"opened on it and drawn (Textual headless, 120x40) in {drawn:.2f} s more")


def attach_time(steps: int) -> str:
    """The real thing: `ddpg-tui attach` in a 120x40 tmux pane on a live run at step `steps`, timed from the
    command to the events panel saying it read the whole history (its "attached: N episodes" line).

    The run: a real pendulum run of 2,000 steps whose checkpoint's step counter is moved on to `steps`
    (the networks and buffer are the real ones), with a metrics.jsonl of `steps` steps written as the
    trainer writes it, resumed with --detach so that it trains on from there.
    """
    from agents.checkpoint import load_checkpoint, save_checkpoint
    from agents.events import EpisodeEnd, EvalResult, UpdateStats
    from agents.run_files import RunFiles

    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        subprocess.run([ddpg_tui(), "train", "--preset", "pendulum", "--steps", "2000", "--headless",
                        "--set", "threads=1", "--run-dir", str(run_dir)], check=True, capture_output=True)
        files = RunFiles(run_dir)
        payload = load_checkpoint(files.latest)
        payload["counters"]["step"] = steps
        save_checkpoint(files.latest, payload)
        rows = []
        episodes = 0
        for step in range(200, steps + 1, 200):
            episodes += 1
            rows += [EpisodeEnd(step, episodes, -150.0 - step % 7, 200), UpdateStats(step, step, 1.0, 2.0, -3.0)]
            if step % 2000 == 0:
                rows.append(EvalResult(step, -150.0, 10.0, (-150.0,) * 10, False, (200,) * 10))
        files.metrics_path.unlink()
        for row in rows:
            files.record(row)
        files.close()
        subprocess.run([ddpg_tui(), "train", "--resume", str(run_dir), "--steps", str(steps + 200_000),
                        "--detach"], check=True, capture_output=True)
        session = f"bench-attach-{int(time.time()) % 100000}"
        try:
            wait(lambda: (run_dir / "control.json").exists(), 120, "the resumed run's channel")
            started = time.perf_counter()
            tmux("new-session", "-d", "-s", session, *SIZE, f"{ddpg_tui()} attach {run_dir}")
            # The count includes the episodes the resumed run wrote before the client came: at least ours.
            said = re.compile(r"attached: ([\d,]+) episodes")
            while not (found := said.search(subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                                           capture_output=True, text=True).stdout)):
                if time.perf_counter() - started > 60:
                    raise SystemExit("the attached dashboard never showed the history")
                time.sleep(0.02)
            shown = time.perf_counter() - started
            if int(found.group(1).replace(",", "")) < episodes:
                raise SystemExit(f"the attached dashboard read only {found.group(1)} of {episodes:,} episodes")
        finally:
            kill_session(session)
            stop_detached(run_dir)
    return (f"`ddpg-tui attach` on a live run at step {steps:,} ({episodes:,} episodes, {len(rows):,} rows of "
            f"history): the events panel said it had read all of it {shown:.2f} s after the command "
            f"(tmux 120x40, the process's start-up included)")


def append(line: str) -> None:
    print(line, flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as results:
        results.write(line + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8000, help="the run's length; the stretch ends here")
    parser.add_argument("--from-step", type=int, default=2000, help="the stretch starts here")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", default="", help="said on every line, e.g. 'loaded machine'")
    parser.add_argument("--history-only", action="store_true")
    parser.add_argument("--history-steps", type=int, default=1_000_000)
    args = parser.parse_args()
    label = f" [{args.label}]" if args.label else ""
    if args.history_only:
        append(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}{label}: {history_time(args.history_steps)}")
        append(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}{label}: {attach_time(args.history_steps)}")
        return
    modes = args.modes.split(",")
    append(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}{label}: {args.rounds} rounds of {modes}, pendulum preset, "
           f"{args.steps:,} steps, stretch {args.from_step:,}-{args.steps:,}, 1 thread, tmux 120x40")
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    for round_ in range(args.rounds):
        order = modes if round_ % 2 == 0 else modes[::-1]
        with tempfile.TemporaryDirectory() as folder:
            for mode in order:
                took = measure(mode, args.steps, args.from_step, args.seed, Path(folder))
                seconds[mode].append(took)
                append(f"round {round_ + 1} {mode}: {took:.2f} s, "
                       f"{(args.steps - args.from_step) / took:.1f} steps/s")
        if "headless" in seconds:
            base = seconds["headless"][-1]
            append(f"round {round_ + 1} ratios to headless: "
                   + ", ".join(f"{m} {base / seconds[m][-1]:.3f}" for m in modes if m != "headless"))
    medians = {mode: statistics.median(values) for mode, values in seconds.items()}
    line = ", ".join(f"{mode} {medians[mode]:.2f} s" for mode in modes)
    def ratio(base: str, mode: str) -> float:  # the median of the rounds' ratios: each round is side by side
        return statistics.median(b / m for b, m in zip(seconds[base], seconds[mode], strict=True))
    if "headless" in medians:
        line += "; median ratios to headless: " + ", ".join(
            f"{mode} {ratio('headless', mode):.3f}" for mode in modes if mode != "headless")
    if "attached" in medians and "detached" in medians:
        line += f"; attached as a share of detached: {ratio('detached', 'attached'):.3f}"
    append(f"median{label}: {line}")


if __name__ == "__main__":
    main()
