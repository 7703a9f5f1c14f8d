"""Ctrl-C during training: held back until the step's bookkeeping is done, so that the
checkpoint taken on the way out records every step the weights have seen."""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def deferred_interrupt():
    """Hold back Ctrl-C (SIGINT) until a safe point, then raise KeyboardInterrupt.

    A compiled call advances the step counter and the weights together; the Python
    bookkeeping after it (history rows) must happen too before a checkpoint is taken,
    or the saved history would miss the step. The handler only takes note of the
    signal; the interrupt is raised where the block calls the yielded ``check()`` (a
    safe point) or when the block ends. Raising from the handler itself could land in
    a finalizer (``__del__``) during a checkpoint save, where Python swallows it and
    the run would go on. A second Ctrl-C stops at once. Only the main thread can handle
    signals; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    received = []

    def handler(signum, frame):
        if received:
            raise KeyboardInterrupt  # pressed twice: stop now
        received.append(signum)

    def check():
        if received:
            received.clear()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, previous)
    check()
