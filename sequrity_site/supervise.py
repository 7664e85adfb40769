"""Keep one process running: restart it whenever it exits, until this supervisor is told to stop.

    python -m sequrity_site.supervise [--name worker] -- python -m celery -A sequrity_site worker ...

The Procfile runs every process under it (honcho alone stops everything when one process exits). The child
runs in its own process group; SIGTERM, SIGINT, SIGHUP and SIGQUIT are passed on to that group, and after a
SIGTERM/SIGINT the supervisor waits for the child and exits with its status instead of restarting it. When
the child exits by itself (a crash, ``kill -9``, an unrecoverable broker error) whatever is left of its group
is killed and it is started again after a pause that grows from 0.5 s to 30 s while it keeps dying within
``--stable`` seconds of its start. The child gets SIGKILL if the supervisor itself dies (``PR_SET_PDEATHSIG``),
so nothing is left behind.

SIGHUP goes to the child alone, not its group: it means "reload" (uvicorn's master replaces its workers one
at a time, each new one serving before the old one stops; a worker would simply die of it).

``--listen HOST:PORT`` makes the supervisor own the listening socket: it binds it once and hands it to every
child it starts (``SEQURITY_LISTEN_FD`` names the descriptor; ``sequrity_site.serve`` passes it to uvicorn as
``--fd``). While the child is restarting, the kernel keeps accepting connections into the socket's backlog,
so a restart delays clients instead of refusing them.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


LISTEN_FD_ENV = "SEQURITY_LISTEN_FD"
LISTEN_BACKLOG = 2048  # uvicorn's default: connections that wait while a child (re)starts


def listening_socket(address: str) -> socket.socket:
    """The socket every child serves on, bound once for the supervisor's lifetime."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def log(name: str, message: str) -> None:
    print(f"supervise[{name}]: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - one loop: start, wait, decide
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="", help="for the log lines (default: the command)")
    parser.add_argument(
        "--stable",
        type=float,
        default=30.0,
        help="a child that ran this long resets the restart pause (seconds)",
    )
    parser.add_argument("--max-pause", type=float, default=30.0)
    parser.add_argument(
        "--listen",
        default="",
        metavar="HOST:PORT",
        help="own this listening socket and hand it to every child (SEQURITY_LISTEN_FD)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    name = args.name or os.path.basename(command[0])
    stopping: list[int] = []
    child: subprocess.Popen | None = None
    listener = listening_socket(args.listen) if args.listen else None
    child_env = dict(os.environ)
    if listener is not None:
        child_env[LISTEN_FD_ENV] = str(listener.fileno())
        log(name, f"listening on {args.listen} (fd {listener.fileno()}), kept across restarts")

    def on_signal(signum, frame):
        if signum in STOP_SIGNALS:
            stopping.append(signum)
        if child is not None and child.poll() is None:
            try:
                if signum == signal.SIGHUP:
                    os.kill(child.pid, signum)
                else:
                    os.killpg(child.pid, signum)
            except ProcessLookupError:
                pass

    for sig in FORWARDED:
        signal.signal(sig, on_signal)

    failures = 0
    while True:
        started = time.monotonic()
        child = subprocess.Popen(
            command,
            process_group=0,
            preexec_fn=_die_with_parent,
            env=child_env,
            pass_fds=(listener.fileno(),) if listener is not None else (),
        )
        log(name, f"started pid {child.pid}")
        if stopping:  # told to stop while starting it
            os.killpg(child.pid, stopping[0])
        while True:
            try:
                code = child.wait()
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
                continue
        with contextlib.suppress(ProcessLookupError, PermissionError):  # what the child left running: gone
            os.killpg(child.pid, signal.SIGKILL)
        if stopping:
            log(name, f"stopped (exit status {code})")
            return code if code >= 0 else 128 - code
        ran = time.monotonic() - started
        failures = 0 if ran >= args.stable else failures + 1
        pause = min(args.max_pause, 0.5 * 2 ** max(0, failures - 1))
        log(name, f"pid {child.pid} exited with status {code} after {ran:.1f} s; restarting in {pause:.1f} s")
        deadline = time.monotonic() + pause
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.05)
        if stopping:
            return 0


if __name__ == "__main__":
    sys.exit(main())
