"""Progress bars that stay readable in a job's log file.

A tqdm bar redraws itself with a carriage return several times a second: fine on a terminal,
but a log file keeps every frame (one GAN run wrote 195 KB of them on a single "line").
``LogLines`` wraps the stream a job logs to: ordinary lines pass through unchanged, and of the
carriage-return frames it keeps one line per ``interval`` seconds, plus each bar's last frame
when the bar closes. Every loop keeps calling tqdm as before; ``cgankd.jobs.stage_job`` and the
torchrun workers (``cgankd.launch``) put this wrapper in front of a log that is not a terminal.
"""

import io
import threading
import time
from typing import Any, TextIO

# Seconds between two progress lines in a log file: a multi-hour run writes a few hundred lines.
LOG_INTERVAL_S = 30.0


class LogLines(io.TextIOBase):
    """A text stream that turns carriage-return progress frames into occasional plain lines."""

    def __init__(self, stream: TextIO, interval: float = LOG_INTERVAL_S,
                 clock: Any = time.monotonic):
        super().__init__()
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self._line = ""  # text since the last line break: a frame while a "\r" may follow
        self._frame = ""  # the newest frame not written yet
        self._last = None  # when the last frame was written (None: none yet)
        self._lock = threading.Lock()  # tqdm's monitor thread may refresh a bar too

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", None) or "utf-8"

    def fileno(self) -> int:  # a child process (torchrun) writes to the log itself
        return self.stream.fileno()

    def write(self, text: str) -> int:
        with self._lock:
            for char_run, sep in _pieces(text):
                self._line += char_run
                if sep == "\n":
                    self._emit(self._line.rstrip())
                    self._line = self._frame = ""
                elif sep == "\r":
                    self._end_frame()
        return len(text)

    def _end_frame(self) -> None:
        frame = self._line.rstrip()
        self._line = ""
        if not frame:  # tqdm clears its bar (blanks) before a message or on close: keep the
            if self._frame:  # bar's newest state beside it
                self._emit(self._frame)
                self._last, self._frame = self.clock(), ""
            return
        now = self.clock()
        if self._last is None or now - self._last >= self.interval:
            self._emit(frame)
            self._last, self._frame = now, ""
        else:
            self._frame = frame

    def _emit(self, line: str) -> None:
        self.stream.write(line + "\n")

    def flush(self) -> None:
        with self._lock:
            self.stream.flush()

    def close(self) -> None:
        """Write what is pending (a last frame, an unfinished line); leave ``stream`` open."""
        if self.closed:
            return
        with self._lock:
            for pending in (self._frame, self._line.rstrip()):
                if pending:
                    self._emit(pending)
            self._line = self._frame = ""
            self.stream.flush()
        super().close()


def _pieces(text: str) -> list[tuple[str, str]]:
    """``text`` as (run of characters, separator) pairs; the separator is "\n", "\r" or ""."""
    out, start = [], 0
    for i, char in enumerate(text):
        if char in "\r\n":
            out.append((text[start:i], char))
            start = i + 1
    if start < len(text):
        out.append((text[start:], ""))
    return out
