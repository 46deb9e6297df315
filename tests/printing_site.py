"""A sitecustomize that makes every served app process print to fd 1 while it trains.

It is what a library, a C extension or a child process might do; fd 1 of a served app
is textual-serve's protocol channel. The tests put it on PYTHONPATH of the processes they
start. It waits for the trainer's import (the dashboard has opened and the run starts),
so that the noise lands while training runs, not before the app has taken the channel.
"""

from __future__ import annotations

from pathlib import Path

SITECUSTOMIZE = """\
import os, subprocess, sys, threading, time

def _noise():
    while "agents.trainer" not in sys.modules:
        time.sleep(0.05)
    while True:
        print("a library prints to stdout", flush=True)
        os.write(1, b"a C extension writes to fd 1\\n")
        subprocess.run(["echo", "a child process inherits fd 1"])
        time.sleep(0.2)

if os.environ.get("TEXTUAL_DRIVER"):  # only the served app, not the server or pytest
    threading.Thread(target=_noise, daemon=True).start()
"""


def printing_site(folder: Path) -> Path:
    """A folder holding the sitecustomize above, to put on PYTHONPATH."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder
