"""The app as `ddpg-tui serve` runs it: one process per browser tab, driven by textual-serve.

textual-serve starts the app with pipes for stdin, stdout and stderr and sets Textual's
`WebDriver`, whose packets go to fd 1. fd 1 is also where everything else in the process
writes: a library's `print` outside the app, a C extension, Ray and every child process,
which inherit it. One stray byte there breaks the packet stream and the tab. So the
served app moves the protocol to a private fd (`claim_protocol_channel`) and points fd 1
at /dev/null; `ServedDriver` writes its packets to the private fd, which no child inherits.

A closed tab reaches the app as a "quit" packet, not as a hangup; a server that dies
sends nothing, and the app's stdin just ends. The driver turns both into a hangup (SIGHUP
to itself), so that closing a tab takes the same path as closing a
terminal (`ddpg_tui.ui.lifecycle`, `ddpg_tui.ui.app.signals_quit`): the trainer stops,
saves `checkpoints/latest.pt`, and the process ends with 129 within a bound.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any, ClassVar

from textual.drivers.web_driver import WebDriver

KEPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def claim_protocol_channel() -> int:
    """Move whatever fd 1 is (textual-serve's pipe) to a new, non-inheritable fd and point fd 1 at
    /dev/null. Returns the new fd; `ServedDriver.protocol_fd` must be set to it. Call first thing,
    before anything can print."""
    for stream in (sys.stdout, sys.__stdout__):
        if stream is not None:
            stream.flush()
    protocol_fd = os.dup(1)  # os.dup makes a non-inheritable fd: no child process gets the channel
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return protocol_fd


class ServedDriver(WebDriver):
    """Textual's WebDriver, with its packets on `protocol_fd`, a closed tab taken for a hangup,
    and the app's own SIGINT/SIGTERM handlers left in place."""

    protocol_fd: ClassVar[int] = 1  # set by the served entry point from claim_protocol_channel()

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        # WebDriver writes every packet (and the __GANGLION__ prelude) through these two.
        self.fileno = self.protocol_fd
        self._write = self._write_packet
        self._server_gone = False

    def _write_packet(self, data: bytes) -> None:
        if self._server_gone:
            return
        try:
            os.write(self.protocol_fd, data)
        except OSError:
            # EPIPE: no one reads the tab any more (the server died). An exception here would end
            # the app before the run is saved; a hangup saves it and ends the process with 129.
            self._server_gone = True
            os.kill(os.getpid(), signal.SIGHUP)

    def start_application_mode(self) -> None:
        # WebDriver binds SIGINT and SIGTERM to a bare ExitApp, which would end the app with
        # the trainer still running and nothing saved; and asyncio's handlers replace the
        # wakeup fd that lets a signal wake the idle loop. Put back what the app had installed.
        handlers = {sig: signal.getsignal(sig) for sig in KEPT_SIGNALS}
        wakeup_fd = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(wakeup_fd, warn_on_full_buffer=False)
        super().start_application_mode()
        loop = asyncio.get_running_loop()
        for sig, handler in handlers.items():
            loop.remove_signal_handler(sig)
            if handler is not None:
                signal.signal(sig, handler)
        signal.set_wakeup_fd(wakeup_fd, warn_on_full_buffer=False)

    def run_input_thread(self) -> None:
        super().run_input_thread()
        if not self.exit_event.is_set():
            # stdin ended with the app still running: the server is gone (killed, crashed) and sent
            # no quit. Nobody can see or steer this run any more, so it ends as a closed tab does.
            os.kill(os.getpid(), signal.SIGHUP)

    def on_meta(self, packet_type: str, payload: dict[str, object]) -> None:
        if packet_type == "quit":
            # textual-serve sends this when the tab's websocket closes (or the server stops).
            os.kill(os.getpid(), signal.SIGHUP)
            return
        super().on_meta(packet_type, payload)
