"""The process supervisor (``sequrity_site.supervise``): the listening socket outlives its children.

A child that serves one connection and exits is restarted over and over; clients that connect while no child
runs wait in the socket's backlog and are answered by the next child: no connection is ever refused.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

ONE_SHOT_SERVER = textwrap.dedent("""
    import os, signal, socket, sys, time
    hups = []
    signal.signal(signal.SIGHUP, lambda *a: hups.append(1))
    listener = socket.socket(fileno=int(os.environ["SEQURITY_LISTEN_FD"]))
    time.sleep(0.3)  # a slow start: connections made meanwhile must wait, not be refused
    conn, _ = listener.accept()
    conn.recv(16)
    conn.sendall(f"{os.getpid()} {len(hups)}".encode())
    conn.close()
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(b"hello")
        return conn.recv(64).decode()


def start_supervisor(port: int, tmp_path: Path) -> subprocess.Popen:
    script = tmp_path / "one_shot.py"
    script.write_text(ONE_SHOT_SERVER)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sequrity_site.supervise",
            "--name",
            "t",
            "--stable",
            "0",
            "--max-pause",
            "0.1",
            "--listen",
            f"127.0.0.1:{port}",
            "--",
            sys.executable,
            str(script),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the socket is bound before the first child starts
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except ConnectionRefusedError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(process.stderr.read() if process.stderr else "supervisor did not listen")


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err


def test_connections_wait_through_restarts_instead_of_being_refused(tmp_path):
    port = free_port()
    supervisor = start_supervisor(port, tmp_path)
    try:
        answers = [ask(port) for _ in range(6)]  # each answered by a new child: five restarts in between
    finally:
        log = stop(supervisor)
    pids = [a.split()[0] for a in answers if a]
    assert len(pids) == 6, (answers, log)
    assert len(set(pids)) >= 5, (answers, log)  # (the probe connection above took the first child)
    assert "kept across restarts" in log


def test_sighup_goes_to_the_child_alone_and_does_not_restart_it(tmp_path):
    port = free_port()
    supervisor = start_supervisor(port, tmp_path)
    try:
        ask(port)  # the probe's child is done; wait for the next one to be running
        time.sleep(0.5)
        supervisor.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        pid, hups = ask(port).split()
    finally:
        log = stop(supervisor)
    assert hups == "1", log  # the child handled it (a group-wide SIGHUP would have killed a worker)
    assert int(pid) != os.getpid()
