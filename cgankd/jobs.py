"""Running one pipeline stage as a job: threads, the job's log file, and errors.

Workflow scripts wrap their one package call in ``stage_job``: output goes to the rule's log
file (progress bars as one line per interval, see ``cgankd.progress``), and a failure ends the
job with a single ``cgankd: error: ...`` line on the console and in the log. Bad input
(CgankdInputError) is that line alone; anything unexpected adds its full traceback to the log,
which is what a cluster user reads, so the console stays one line long.
"""

import contextlib
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from cgankd.device import set_threads
from cgankd.errors import CgankdInputError
from cgankd.progress import LogLines


@contextlib.contextmanager
def stage_job(log_path: str | Path | None = None, threads: int | None = None) -> Iterator[None]:
    set_threads(threads)
    console = sys.stderr
    log = lines = None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "w", buffering=1)
        lines = LogLines(log)
    try:
        with contextlib.ExitStack() as stack:
            if lines is not None:
                stack.enter_context(contextlib.redirect_stdout(lines))
                stack.enter_context(contextlib.redirect_stderr(lines))
            yield
    except CgankdInputError as err:
        _fail(f"cgankd: error: {err}", None, lines, console)
    except Exception as err:  # a bug or an environment failure: keep the traceback in the log
        line = f"cgankd: error: {type(err).__name__}: {' '.join(str(err).split())}"
        _fail(line, traceback.format_exc(), lines, console,
              hint=f" (traceback in {log_path})" if log_path else "")
    finally:
        if lines is not None:
            lines.close()
            log.close()


def _fail(line: str, trace: str | None, log, console, hint: str = "") -> None:
    """Write ``line`` (and ``trace``) to the log, ``line`` to the console, and exit with 1."""
    if log is not None:
        print(line, file=log, flush=True)
        if trace:
            print(trace.rstrip(), file=log, flush=True)
    if log is None and trace:
        print(trace.rstrip(), file=console, flush=True)
    print(line + hint, file=console, flush=True)
    raise SystemExit(1) from None
