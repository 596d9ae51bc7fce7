"""The real server in a process of its own, with a clock the test moves.

    python -m tests.support.clocked_server --port 8123 --clock-file /tmp/clock

Everything is the application as ``python -m app serve`` runs it (``create_app`` under
uvicorn, settings from the environment), except the clock: the app's "now" is the real time
plus the number of seconds written in the clock file (0 when it is missing). A crash test
kills this process with SIGKILL, writes 150 into the file, and starts it again: for the app,
two and a half minutes have passed while it was down, without the test waiting for them.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import uvicorn

from app.config import Settings
from app.factory import create_app
from meetings.foundation.base import utcnow


class FileClock:
    """Real time shifted by the offset in ``path`` (seconds), reread when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: int | None = None
        self._offset = 0.0

    def __call__(self) -> dt.datetime:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return utcnow()
        if stamp != self._stamp:
            self._offset = float(self.path.read_text().strip() or 0)
            self._stamp = stamp
        return utcnow() + dt.timedelta(seconds=self._offset)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clock-file", type=Path, required=True)
    args = parser.parse_args()
    app = create_app(Settings.from_env(), clock=FileClock(args.clock_file))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
