"""The command `ddpg-tui serve` hands textual-serve: the app, one process per browser tab.

`python -m ddpg_tui.cli.served_app --runs-root DIR`. Only textual-serve runs it: its stdout
must be textual-serve's pipe. Before the app (or torch, or anything that might print)
is imported, it takes that pipe off fd 1 (see `ddpg_tui.ui.served`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ddpg_tui.request import EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddpg_tui.cli.served_app",
                                     description="The app as 'ddpg-tui serve' runs it for each browser tab.")
    parser.add_argument("--runs-root", type=Path, default=Path("runs"), metavar="DIR")
    args = parser.parse_args(argv)
    if "textual.drivers.web_driver" not in os.environ.get("TEXTUAL_DRIVER", ""):
        print("ddpg-tui: error: this is the app for 'ddpg-tui serve' to start, one per browser tab; "
              "run 'ddpg-tui serve' instead", file=sys.stderr)
        return EXIT_BAD_INPUT

    from ddpg_tui.ui.served import ServedDriver, claim_protocol_channel

    ServedDriver.protocol_fd = claim_protocol_channel()
    from ddpg_tui.ui.app import run_app

    return run_app(None, args.runs_root, driver_class=ServedDriver)


if __name__ == "__main__":
    raise SystemExit(main())
