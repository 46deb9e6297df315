"""One module per `ddpg-tui` subcommand.

Each defines NAME, HELP, DESCRIPTION, `add_arguments(parser)` and `run(args) -> int`, and
imports only light modules at its top: `cli.py` imports every one of them to build the
parser, and `ddpg-tui --help` must answer at once. Heavy imports go inside `run`.
"""

COMMAND_MODULES = ("train", "evaluate", "presets_list", "sweep", "compare", "watch")
