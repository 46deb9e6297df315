"""The `ddpg-tui` command.

With no subcommand it opens the app; each subcommand lives in `ddpg_tui/cli/commands/`. Heavy
modules (torch, gymnasium, textual) are imported only once a command runs, so `--help`
and argument errors answer at once. Nothing imports this module: it sits on top.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from agents.config import ConfigError
from ddpg_tui.cli.commands import COMMAND_MODULES, require_terminal
from ddpg_tui.request import EXIT_BAD_INPUT, EXIT_SIGINT, UsageError
from presets import PresetError

EPILOG = """\
examples:
  ddpg-tui                                      open the app on the preset list
  ddpg-tui train --preset pendulum              train in the app's dashboard
  ddpg-tui train --preset pendulum --headless   train with a progress bar only
  ddpg-tui train --env MountainCarContinuous-v0 --set noise=ou --set noise_sigma=0.5 --headless
  ddpg-tui train --resume runs/pendulum-20261124-120000 --headless
  ddpg-tui eval runs/pendulum-20261124-120000 --episodes 20
  ddpg-tui export runs/pendulum-20261124-120000 -o pendulum.onnx
  ddpg-tui presets
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line instead of argparse's usage dump; --help has the details.
        raise UsageError(f"{message} (see '{self.prog} --help')")


def command_modules() -> dict[str, ModuleType]:
    modules = [importlib.import_module(f"ddpg_tui.cli.commands.{name}") for name in COMMAND_MODULES]
    return {module.NAME: module for module in modules}


def build_parser(modules: dict[str, ModuleType] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ddpg-tui",
        description="Train and evaluate DDPG agents on continuous-control Gymnasium tasks. "
        "With no command, opens the interactive app.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in (modules or command_modules()).items():
        epilog = module.epilog() if hasattr(module, "epilog") else getattr(module, "EXAMPLES", None)
        sub = commands.add_parser(name, help=module.HELP, description=module.DESCRIPTION, epilog=epilog,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        modules = command_modules()
        args = build_parser(modules).parse_args(argv)
        if args.command is None:
            require_terminal("to train without one, use 'ddpg-tui train --headless'")
            from ddpg_tui.ui.app import run_app

            return run_app(None)
        return modules[args.command].run(args)
    except (UsageError, ConfigError, PresetError) as error:
        print(f"ddpg-tui: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("ddpg-tui: interrupted", file=sys.stderr)
        return EXIT_SIGINT


if __name__ == "__main__":
    raise SystemExit(main())
