"""Where a process's resident memory goes: a thread samples the process's RSS and, at each
sample, the main thread's innermost frame in the project; the report is the highest RSS
seen inside each such function and the stack at the overall peak.

    with RssProfile() as prof:
        work()
    print(prof.report())

Sampling rather than tracemalloc or memray: numpy's and BLAS's buffers are what matter
here, tracemalloc slows the fit several-fold, and memray would be one more dependency
for one table; an RSS sample every ``interval`` seconds finds the phase that holds the
peak, which is the question (bench/model_stage.py ``--profile``).
"""

import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)


def rss_mib() -> float:
    """The process's current resident set (VmRSS), MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _where(frame) -> tuple[str, list[str]]:
    """(innermost project function, the project's part of the stack) of ``frame``."""
    stack = [
        f"{Path(f.filename).relative_to(ROOT)}:{f.lineno} {f.name}"
        for f in traceback.extract_stack(frame)
        if f.filename.startswith(ROOT) and "/.venv/" not in f.filename
        and not f.filename.endswith("rss_profile.py")
    ]  # fmt: skip
    return (stack[-1].split(":")[0] + " " + stack[-1].split()[-1]) if stack else "?", stack


class RssProfile:
    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.by_function: dict[str, float] = {}
        self.peak = 0.0
        self.peak_stack: list[str] = []
        self.start_mib = 0.0

    def __enter__(self):
        self._main = threading.main_thread().ident
        self._stop = threading.Event()
        self.start_mib = rss_mib()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.wait(self.interval):
            rss = rss_mib()
            frame = sys._current_frames().get(self._main)
            if frame is None:
                continue
            name, stack = _where(frame)
            self.by_function[name] = max(self.by_function.get(name, 0.0), rss)
            if rss > self.peak:
                self.peak, self.peak_stack = rss, stack

    def report(self, top: int = 15) -> dict:
        ranked = sorted(self.by_function.items(), key=lambda kv: -kv[1])[:top]
        return {
            "rss_at_start_mib": round(self.start_mib),
            "rss_peak_sampled_mib": round(self.peak),
            "stack_at_peak": self.peak_stack,
            "highest_rss_mib_by_function": {k: round(v) for k, v in ranked},
        }


if __name__ == "__main__":  # a smoke check: the peak of a 200 MiB array is found
    import numpy as np

    def big():
        a = np.ones(200 * 2**20 // 8)
        time.sleep(0.3)
        return a.sum()

    with RssProfile() as prof:
        big()
    print(prof.report())
