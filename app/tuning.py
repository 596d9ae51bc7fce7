"""Process tuning of the garbage collector: for the server as a whole (``tune_gc``) and around
one bulk computation (``paused_gc``). Process concerns, so they live in the web layer, not in
the domain."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def tune_gc() -> None:
    """Keep garbage collection from pausing the rooms.

    A server holding thousands of WebSocket connections has a large heap, and a full (gen-2)
    collection walks all of it: measured with 2,000 connections, 130–400 ms with the event
    loop stopped, which is every participant's chat and hand raise waiting. Two standard
    remedies: ``gc.freeze()`` moves everything loaded at start-up (modules, the app) out of
    the collector's sight, and a larger gen-0 threshold lets a frame's short-lived objects
    die young instead of being promoted, so that gen-2 collections become rare
    (bench/signalling.py: none in a run instead of one every 5–20 s).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 10)


_gc_lock = threading.Lock()
_gc_holders = 0
_gc_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Suspend the cyclic garbage collector while a bulk computation runs.

    A province's roll-up builds a couple of hundred thousand small objects that all stay
    alive until the page is written; the collector, triggered again and again by those
    allocations, finds no garbage among them but rescans them all — a quarter of the page's
    time. Reference counting still frees everything as usual. Several threads may hold the
    pause at once; the last one out restores the collector as it was.
    """
    global _gc_holders, _gc_was_enabled
    with _gc_lock:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()
