"""Peak resident memory of this process since it started its program.

`getrusage().ru_maxrss` survives exec on Linux: a benchmark child forked from a big
driver reports the driver's peak as its own. /proc's VmHWM belongs to the current
program image only, so it is used where it exists.
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
