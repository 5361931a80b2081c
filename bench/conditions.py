"""What a benchmark's numbers were measured under: the commit, and how busy the machine was.

The machine's 2 cores are shared with other work, so every result is saved beside the
1-minute load average over its run and the commit it measured.
"""

import os
import statistics
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str:
    """The commit measured, with ``+dirty`` when tracked files differ from it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    return f"{head}+dirty" if dirty else head or "unknown"


def product_commit() -> str:
    """The last commit that changed anything outside bench/: the product code measured,
    which stays the same while only the harness changes."""
    return subprocess.run(
        ["git", "log", "-1", "--format=%h", "--", ".", ":(exclude)bench"],
        cwd=ROOT, capture_output=True, text=True,
    ).stdout.strip() or "unknown"  # fmt: skip


class LoadSampler:
    """The machine's 1-minute load average every few seconds while a step runs.

    The 2 cores are shared; a step's numbers are read next to how busy the machine was."""

    def __init__(self, every: float = 5.0):
        self.every, self.samples = every, [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict:
        return {
            "start": round(self.samples[0], 1),
            "mean": round(statistics.fmean(self.samples), 1),
            "max": round(max(self.samples), 1),
        }
