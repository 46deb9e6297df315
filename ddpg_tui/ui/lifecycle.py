"""How a ddpg-tui process ends on a signal: the one policy every front-end follows.

On SIGINT, SIGTERM or SIGHUP a front-end first stops its trainer or sweep (which saves),
and only then says anything, because a closed terminal makes every write raise EIO. A
hangup also points fd 1 and 2 at /dev/null and puts SIGCONT and SIGTSTP back to their
defaults: the kernel sends a hung-up session leader SIGHUP *and* SIGCONT, and Textual's
SIGCONT handler restarts a non-daemon input thread that spins on the dead terminal and
keeps the process alive for ever. Every wait on the way out is bounded: once the save is
done, or the bound has passed, `end_process` ends the process with 128 + the signal. A
process ended that way skips the toolkit's own teardown, so where the terminal still
exists (any signal but SIGHUP) `restore_terminal` gives it back as it was found.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

EXIT_CODES = {signal.SIGHUP: 129, signal.SIGINT: 130, signal.SIGTERM: 143}
SAVE_BOUND = 60.0  # seconds a stop may take to save before the process is ended without it
EXIT_GRACE = 2.0  # seconds a process that has saved gets to end on its own before it is ended here
SWEEP_STOP_BOUND = 120.0  # seconds for a sweep's running trials to save and its Tune loop to end
# What an app turns on and must turn off: mouse reports (1000, 1003, 1015, 1006), bracketed paste,
# focus events, the kitty keyboard protocol, the alternate screen; and the hidden cursor back on.
LEAVE_APP_MODE = b"\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[?2004l\x1b[?1004l\x1b[<u\x1b[?1049l\x1b[?25h"


def exit_code(signum: int) -> int:
    return EXIT_CODES.get(signal.Signals(signum), 128 + int(signum))


def detach_from_dead_terminal() -> None:
    """After a hangup: nothing may write to, or read from, the closed terminal any more."""
    for sig in (signal.SIGCONT, signal.SIGTSTP):
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)


def on_signal_received(signum: int) -> None:
    """What every front-end does first on a signal, before stopping its work."""
    if signum == signal.SIGHUP:
        detach_from_dead_terminal()


def say(write: Callable[[str], object], text: str) -> None:
    """Print on the way out; a terminal that has gone away gets nothing, and no error."""
    with contextlib.suppress(OSError, ValueError):
        write(text)


def end_process(code: int) -> None:
    """Flush what Python still buffers, then end now: no thread (ours or a toolkit's) can hold the exit."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(code)


def end_after(done: threading.Event | Callable[[], bool], code: int, bound: float = SAVE_BOUND,
              grace: float = EXIT_GRACE, before_end: Callable[[], None] | None = None) -> threading.Thread:
    """A daemon watchdog: once `done` (the save) is set, or `bound` seconds pass, give the process
    `grace` seconds to end on its own, then call `before_end` (e.g. give the terminal back) and end
    it with `code`.

    A process that exits normally takes this daemon thread with it, so the watchdog only
    acts when something (a toolkit thread on a dead terminal, a wedged loop) holds the exit.
    """
    is_done = done.is_set if isinstance(done, threading.Event) else done

    def watch() -> None:
        deadline = time.monotonic() + bound
        while not is_done() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(grace)
        if before_end is not None:
            with contextlib.suppress(Exception):  # nothing may keep the process from ending
                before_end()
        end_process(code)

    thread = threading.Thread(target=watch, name="end-after-signal", daemon=True)
    thread.start()
    return thread


def keep_handlers_if_signalled(previous: dict[int, Any], received: Sequence[int]) -> None:
    """When the work has ended: put back the handlers from before it began, unless a signal came.

    Then the front-end's own handler stays, so that a second Ctrl+C while the last lines print
    (or while the interpreter winds down) still ends the process at once with 130. Python's
    handler would raise KeyboardInterrupt there instead: a traceback, and death by SIGINT.
    """
    if received:
        return
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def end_if_signalled(received: Sequence[int], code: int) -> int:
    """After a signal, once the save is done and the last lines printed: end now with `code`.

    Nothing is left to do, and the interpreter's teardown (torch's included) took 0.7 s in which
    a second Ctrl+C could only kill the process. Without a signal, `code` is returned.
    """
    if received:
        end_process(code)
    return code


@dataclass(frozen=True)
class SavedTerminal:
    """A terminal's settings from before an app changed them: `fd` is the tty, `out` where escapes go."""

    fd: int
    out: int
    attrs: list[Any]


def save_terminal(fd: int = 0, out: int = 2) -> SavedTerminal | None:
    """The settings of the terminal on `fd`, or None when it is no terminal (a pipe, a browser's app).

    Textual draws on stderr (fd 2), so that is where the escapes that undo its modes go; a
    stderr that is not the terminal sends them to `fd` instead.
    """
    try:
        if not os.isatty(fd):
            return None
        return SavedTerminal(fd, out if os.isatty(out) else fd, termios.tcgetattr(fd))
    except (OSError, termios.error):
        return None


def restore_terminal(saved: SavedTerminal | None, signum: int | None = None) -> None:
    """Give the terminal back as it was found, when the app's own exit will not run to do it.

    After SIGHUP the terminal is gone (and fds 0-2 are /dev/null): nothing is tried.
    """
    if saved is None or signum == signal.SIGHUP:
        return
    with contextlib.suppress(OSError, termios.error):
        termios.tcsetattr(saved.fd, termios.TCSANOW, saved.attrs)
    with contextlib.suppress(OSError):
        os.write(saved.out, LEAVE_APP_MODE)


@contextlib.contextmanager
def wake_on_signals(wake: Callable[[], None]) -> Iterator[None]:
    """Make a signal wake an idle event loop, so that its Python handler runs at once.

    The kernel may deliver a signal to any thread; CPython then only sets a flag, and the
    handler runs when the main thread next executes bytecode. An idle Textual app sits in
    epoll_wait with no timer due, so a hangup on the idle picker was never acted on. The
    C-level handler writes each signal's number to the wakeup fd; a thread reading it calls
    `wake` (e.g. `loop.call_soon_threadsafe` of a no-op), which returns the loop to Python.
    Call from the main thread.
    """
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

    def relay() -> None:
        with contextlib.suppress(OSError):
            while reader.recv(64):
                with contextlib.suppress(Exception):  # the loop may be gone; the handler runs anyway
                    wake()

    threading.Thread(target=relay, name="signal-wakeup", daemon=True).start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        writer.close()
