"""The command-line room: argparse, the subcommands and the headless front-end. Nothing imports it."""
