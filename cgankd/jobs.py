"""Running one pipeline stage as a job: threads, the job's log file, and user errors.

Workflow scripts wrap their one package call in ``stage_job``: output goes to the rule's log
file, and bad input ends the job with a single ``cgankd: error: ...`` line on the console as well
as in the log, instead of a traceback.
"""

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from cgankd.device import set_threads
from cgankd.errors import CgankdInputError


@contextlib.contextmanager
def stage_job(log_path: str | Path | None = None, threads: int | None = None) -> Iterator[None]:
    set_threads(threads)
    console = sys.stderr
    log = None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "w", buffering=1)
    try:
        with contextlib.ExitStack() as stack:
            if log is not None:
                stack.enter_context(contextlib.redirect_stdout(log))
                stack.enter_context(contextlib.redirect_stderr(log))
            yield
    except CgankdInputError as err:
        line = f"cgankd: error: {err}"
        for stream in (log, console):
            if stream is not None:
                print(line, file=stream, flush=True)
        raise SystemExit(1) from None
    finally:
        if log is not None:
            log.close()
