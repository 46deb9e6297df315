"""How a ddpg-tui process ends on a signal: the one policy every front-end follows.

On SIGINT, SIGTERM or SIGHUP a front-end first stops its trainer or sweep (which saves),
and only then says anything, because a closed terminal makes every write raise EIO. A
hangup also points fd 1 and 2 at /dev/null and puts SIGCONT and SIGTSTP back to their
defaults: the kernel sends a hung-up session leader SIGHUP *and* SIGCONT, and Textual's
SIGCONT handler restarts a non-daemon input thread that spins on the dead terminal and
keeps the process alive for ever. Every wait on the way out is bounded: once the save is
done, or the bound has passed, `end_process` ends the process with 128 + the signal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator

EXIT_CODES = {signal.SIGHUP: 129, signal.SIGINT: 130, signal.SIGTERM: 143}
SAVE_BOUND = 60.0  # seconds a stop may take to save before the process is ended without it
EXIT_GRACE = 2.0  # seconds a process that has saved gets to end on its own before it is ended here


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
              grace: float = EXIT_GRACE) -> threading.Thread:
    """A daemon watchdog: once `done` (the save) is set, or `bound` seconds pass, give the process
    `grace` seconds to end on its own, then end it with `code`.

    A process that exits normally takes this daemon thread with it, so the watchdog only
    acts when something (a toolkit thread on a dead terminal, a wedged loop) holds the exit.
    """
    is_done = done.is_set if isinstance(done, threading.Event) else done

    def watch() -> None:
        deadline = time.monotonic() + bound
        while not is_done() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(grace)
        end_process(code)

    thread = threading.Thread(target=watch, name="end-after-signal", daemon=True)
    thread.start()
    return thread


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
