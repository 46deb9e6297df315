"""One module per `ddpg-tui` subcommand.

Each defines NAME, HELP, DESCRIPTION, `add_arguments(parser)` and `run(args) -> int`, and
imports only light modules at its top: `cli/main.py` imports every one of them to build the
parser, and `ddpg-tui --help` must answer at once. Heavy imports go inside `run`.
"""

from collections.abc import Callable

COMMAND_MODULES = ("train", "attach", "evaluate", "presets_list", "sweep", "compare", "watch", "export", "serve")


def int_option(text: str) -> int:
    """argparse `type` for every integer option: `--steps 1e4` means 10000, as `--set` reads it."""
    from argparse import ArgumentTypeError

    from agents.config import parse_int

    try:
        return parse_int(text)
    except ValueError:
        raise ArgumentTypeError(f"invalid int value: {text!r} (a whole number, e.g. 20000 or 2e4)") from None


def require_terminal(instead: str, on_refusal: Callable[[], None] | None = None) -> None:
    """Refuse an app without a terminal, before anything starts: on a pipe or a log file Textual writes escape
    codes into it and waits for keys that never come. `instead` says what works without one; `on_refusal`
    undoes what was prepared for the app (a run folder claimed for it)."""
    import sys

    from ddpg_tui.request import UsageError

    if not sys.stdout.isatty():
        if on_refusal is not None:
            on_refusal()
        raise UsageError(f"the app needs a terminal and stdout is not one; {instead}")
