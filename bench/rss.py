"""Peak resident memory of this process since it started its program.

`getrusage().ru_maxrss` survives exec on Linux: a benchmark child forked from a big
driver reports the driver's peak as its own. /proc's VmHWM belongs to the current
program image only, so it is used where it exists.
"""

from __future__ import annotations

import resource
import threading
import time
from pathlib import Path


def peak_rss_mb() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssTrace:
    """Resident memory sampled every `every` seconds on a daemon thread (Linux)."""

    def __init__(self, every: float = 0.1) -> None:
        self.samples: list[float] = []
        self.every = every
        if Path("/proc/self/status").exists():
            threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            self.samples.append(current_rss_mb())
            time.sleep(self.every)

    def quartiles(self) -> list[float]:
        """RSS at 25, 50, 75 and 100 percent of the run so far, in MB."""
        if not self.samples:
            return []
        n = len(self.samples)
        return [round(self.samples[min(n - 1, n * q // 4)], 1) for q in (1, 2, 3, 4)]
