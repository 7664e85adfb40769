"""Test-only jobs for the program pool (tests/dual/test_program_pool.py). They run in the pool's worker
processes, which import this module by name (tests/dual is on sys.path)."""

from __future__ import annotations

import os
import signal

from relay.interpreter.pool import execute


def stuck_in_c(job):
    """A single C call that runs for minutes: the interpreter never regains control to check its limits."""
    return round(1, -(10**8))


def allocate(job):
    """Allocates far beyond the memory bound outside the interpreter's own accounting."""
    blob = bytearray(8 * 2**30)
    return len(blob)


def die(job):
    """The worker dies abruptly (as when the kernel kills it)."""
    os.kill(os.getpid(), signal.SIGKILL)


def pid_and_run(job):
    """The worker's pid, then the ordinary run."""
    return os.getpid(), execute(job)
