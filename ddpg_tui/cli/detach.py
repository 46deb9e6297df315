"""`ddpg-tui train --detach`: the run in a background process of its own, which outlives this terminal.

The child is `ddpg-tui train --headless` on the same request, in a new session (no controlling terminal,
so closing this one sends it no SIGHUP), stdin from /dev/null and its output in the run folder's
train.log. This process waits only until the child is live (its control channel answers) or has
failed (a bad env id, say: the child's own one-line error is shown here, with its exit code), then
says where the run is and how to attach to it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from ddpg_tui.channel.location import ChannelError, live_control
from ddpg_tui.request import EXIT_FAILED, EXIT_OK, TrainingRequest

LOG_NAME = "train.log"
START_TIMEOUT_SECONDS = 120.0  # importing torch and building the env; on a busy machine it can take a while


def child_arguments(args: argparse.Namespace, request: TrainingRequest) -> list[str]:
    """The headless train command of `request`, with the folder this process already resolved (or claimed)."""
    argv = ["train", "--headless"]
    if request.resume_from is not None:
        argv += ["--resume", str(request.run_dir)]
        if args.env:
            argv += ["--env", args.env]
    else:
        argv += ["--run-dir", str(request.run_dir)]
        if args.preset:
            argv += ["--preset", args.preset]
        if args.env:
            argv += ["--env", args.env]
        for override in args.overrides:
            argv += ["--set", override]
        if args.seed is not None:
            argv += ["--seed", str(args.seed)]
    if args.steps is not None:
        argv += ["--steps", str(args.steps)]
    if args.no_buffer:
        argv.append("--no-buffer")
    return argv


def start_detached(args: argparse.Namespace, request: TrainingRequest) -> int:
    run_dir = request.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / LOG_NAME
    with log_path.open("ab") as log:  # a resumed run's log goes on where it was
        child = subprocess.Popen([sys.executable, "-m", "ddpg_tui", *child_arguments(args, request)],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, cwd=os.getcwd())
    started = log_path.stat().st_size if log_path.exists() else 0
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while child.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(ChannelError):
            live_control(run_dir)
            break
        time.sleep(0.1)
    code = child.poll()
    if code is not None and code != EXIT_OK:
        return _report_failure(request, log_path, started, code)
    print(f"training in the background (process {child.pid}) → {run_dir}")
    print(f"  log:    {log_path}")
    print(f"  attach: ddpg-tui attach {run_dir}")
    return EXIT_OK


def _report_failure(request: TrainingRequest, log_path: Path, started: int, code: int) -> int:
    """The child could not start the run: its own error lines here, and no folder left behind for nothing."""
    with log_path.open("rb") as log:
        log.seek(started)
        output = log.read().decode(errors="replace").strip()
    errors = [line for line in output.splitlines() if line.startswith("ddpg-tui: error:")]
    print(errors[-1] if errors else f"ddpg-tui: error: the background run ended at once (exit {code}); "
          f"see {log_path}", file=sys.stderr)
    if request.claimed_run_dir:
        log_path.unlink(missing_ok=True)
        request.discard_unused_run_dir()
    return code if code > 0 else EXIT_FAILED
