"""`ddpg-tui serve`: the app in a browser, one app process per tab, through textual-serve."""

from __future__ import annotations

import argparse
import errno
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from ddpg_tui.cli.commands import int_option
from ddpg_tui.request import EXIT_OK, UsageError

NAME = "serve"
HELP = "serve the app to a web browser (each tab is its own app)"
DESCRIPTION = ("Serve the app over HTTP with textual-serve (pip install 'ddpg-tui[serve]'). Each browser tab "
               "runs its own app process; a run started in a tab trains in that process, and closing the tab "
               "saves and stops it, as closing a terminal does. textual-serve has no login of its own: on a "
               "loopback address (the default) anyone who can log in to this machine can reach it; any other "
               "--host needs a token, and requests without it get 401.")
EXAMPLES = """\
examples:
  ddpg-tui serve                                   http://127.0.0.1:8000, this machine only
  ssh -L 8000:127.0.0.1:8000 you@server            then open http://localhost:8000 on your laptop
  DDPG_TUI_TOKEN=$(openssl rand -hex 16) ddpg-tui serve --host 0.0.0.0
  ddpg-tui serve --host 0.0.0.0 --token-file ~/.config/ddpg-tui/token
"""
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default: {DEFAULT_HOST}); anything but a loopback address "
                        "needs a token")
    parser.add_argument("--port", type=int_option, default=DEFAULT_PORT, metavar="PORT",
                        help=f"port to listen on (default: {DEFAULT_PORT})")
    parser.add_argument("--runs", type=Path, default=Path("runs"), metavar="DIR",
                        help="the runs folder of every tab's app (default: runs)")
    parser.add_argument("--token-file", type=Path, metavar="FILE",
                        help="read the token from FILE (better than --token: argv is visible to every user "
                        "in ps); $DDPG_TUI_TOKEN works as well. The browser asks for it as the password "
                        "(any user name), or open the address once with ?token=TOKEN")
    parser.add_argument("--token", metavar="TOKEN",
                        help="the token itself (visible in ps: prefer --token-file or $DDPG_TUI_TOKEN)")


def served_command(runs_root: Path) -> str:
    """The shell command textual-serve runs for each tab: this Python, this app, this runs folder."""
    return shlex.join([sys.executable, "-m", "ddpg_tui.cli.served_app", "--runs-root", str(runs_root.resolve())])


def make_server(command: str, host: str, port: int, token: str | None) -> Any:
    """textual-serve's Server with our access rules in front of every route, and the page's
    addresses taken from the request (so that an 'ssh -L' to another local port works)."""
    from textual_serve.server import Server

    from ddpg_tui.cli.serve_access import RedactToken, access_middleware

    logging.getLogger("aiohttp.access").addFilter(RedactToken())

    class GuardedServer(Server):
        async def _make_app(self) -> Any:
            app = await super()._make_app()
            app.middlewares.append(access_middleware(token))
            return app

        async def handle_index(self, request: Any) -> Any:
            # textual-serve writes absolute addresses into the page from its public_url. Reading it
            # from the request instead makes the page work at whatever address the browser used.
            # Nothing awaits between this line and the template reading it, so tabs cannot mix.
            self.public_url = f"{request.scheme}://{request.host}"
            return await super().handle_index(request)

    return GuardedServer(command, host=host, port=port, title="ddpg-tui")


def run(args: argparse.Namespace) -> int:
    import os

    from ddpg_tui.cli.serve_access import check_bind, hide_token_from_tabs, read_token

    if not 0 < args.port < 65536:
        raise UsageError(f"--port: {args.port} is not allowed; expected 1 to 65535")
    token = read_token(args.token, args.token_file, os.environ)
    check_bind(args.host, token)
    try:
        import textual_serve  # noqa: F401
    except ImportError:
        raise UsageError("serving needs textual-serve: pip install 'ddpg-tui[serve]'") from None
    hide_token_from_tabs()
    server = make_server(served_command(args.runs), args.host, args.port, token)
    try:
        server.serve()
    except OSError as error:  # the port is taken, or the address is not this machine's
        reason = ("the port is in use; choose another with --port" if error.errno == errno.EADDRINUSE
                  else error.strerror or str(error))
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {reason}") from None
    return EXIT_OK

