"""Logging: stderr plus a rotating file in the lake (<lake>/logs/walake.log).

Levels come from `--log-level`, else the config's `resources.log_level`. Message
text is logged only at DEBUG: at INFO and above, walake logs counts, ids of batches
and files, never what people wrote. `walake forget` removes log lines that mention
a forgotten chat, sender or text.
"""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

from ingest.lake.files import ensure_private_dir

LOG_FILE = "walake.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_walake_handler"
log = logging.getLogger(__name__)


class PrivateRotatingFileHandler(RotatingFileHandler):
    """A rotating log whose files are readable by the owner only."""

    def _open(self):  # noqa: ANN202 - logging's own signature
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, self.mode.replace("w", "a"), encoding=self.encoding)


def configure_logging(
    level: str | None, lake: Path | None = None, *, stderr: bool = True,
    file_optional: bool = False,
) -> Path | None:
    """Send walake's logs to stderr and, with a lake, to its log file; idempotent.

    With `file_optional` (commands that only read the lake), a log file that cannot
    be opened (a read-only lake) leaves the logs on stderr; else that is an error.
    """
    chosen = (level or "WARNING").upper()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(chosen)
    if stderr:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(FORMAT))
        setattr(stream, _MARK, True)
        root.addHandler(stream)
    if lake is None or not Path(lake).exists():
        return None
    try:
        handler = lake_file_handler(Path(lake))
    except OSError as exc:
        if not file_optional:
            raise
        log.info("not logging to %s (%s); logs go to stderr only",
                 exc.filename or Path(lake) / "logs", exc.strerror or exc)
        return None
    root.addHandler(handler)
    return Path(lake) / "logs" / LOG_FILE


def lake_file_handler(lake: Path) -> logging.Handler:
    """The rotating handler of <lake>/logs/walake.log (the folder made if missing)."""
    folder = ensure_private_dir(lake / "logs")
    handler = PrivateRotatingFileHandler(folder / LOG_FILE, maxBytes=MAX_BYTES,
                                         backupCount=BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    setattr(handler, _MARK, True)
    return handler
