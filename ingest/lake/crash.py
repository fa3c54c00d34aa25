"""Crash points for tests: `WALAKE_CRASH_AT=point:n` kills the process with SIGKILL
the n-th time it reaches `point`. Unset (always, outside tests), it does nothing.

Points: raw_written, parquet_written, manifest_temp_written, batch_recorded.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV_VAR = "WALAKE_CRASH_AT"
_reached: Counter[str] = Counter()


def crash_point(name: str) -> None:
    wanted = os.environ.get(ENV_VAR)
    if not wanted:
        return
    point, _, times = wanted.partition(":")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] >= int(times or 1):
        os.kill(os.getpid(), signal.SIGKILL)
