"""Run a stage in this process, or on several GPUs through torchrun.

A workflow script calls ``run_stage(train_student.run, kwargs, gpus=...)`` with its stage's
function and the GPU count its rule declares. With one GPU, or none, the function runs here
exactly as a direct call. With several, its name (``module:qualname``) and the keyword
arguments go to a JSON file and ``torchrun --standalone --nproc_per_node=N -m cgankd.launch
FILE`` starts one worker per GPU (``main`` below), so the workers never need Snakemake. A
worker runs only functions of ``cgankd.stages.*``: the spec file names code to import, and
the stages are what the pipeline launches. Rank 0's return value comes back as the stage's
result, and a worker's CgankdInputError comes back as the same one-line error.
"""

import contextlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from cgankd import distributed
from cgankd.device import set_threads
from cgankd.errors import CgankdInputError
from cgankd.h5io import atomic_path
from cgankd.progress import LogLines

STAGES_PACKAGE = "cgankd.stages"  # a worker runs functions of its modules only
SPEC = "stage.json"  # what the workers run: {"stage": "module:qualname", "kwargs", "threads"}
RESULT = "result.json"  # rank 0's return value
ERROR = "error.{rank}.txt"  # a worker's CgankdInputError message
PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])  # put on the workers' PYTHONPATH


def stage_name(function: Callable[..., Any]) -> str:
    """``module:qualname`` of a stage function, the name a torchrun worker imports it by."""
    name = f"{getattr(function, '__module__', None)}:{getattr(function, '__qualname__', '')}"
    stage_function(name)  # not a stage function, or not importable by its name: fail here
    return name


def stage_function(name: str) -> Callable[..., Any]:
    """The function ``module:qualname`` names, if it is one of ``cgankd.stages.*``."""
    module, _, qualname = str(name).partition(":")
    if not module.startswith(STAGES_PACKAGE + ".") or not qualname or "<" in qualname:
        raise CgankdInputError(f"the launcher runs functions of {STAGES_PACKAGE}.* only "
                               f"('module:qualname'), got {name!r}")
    try:
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        raise CgankdInputError(f"the launcher found no function {name!r}") from None
    if not callable(target):
        raise CgankdInputError(f"the launcher found no function {name!r}")
    return target


def processes_for(gpus: Any, device: str = "auto") -> int:
    """Worker processes for a job granted ``gpus`` GPUs: one per GPU it may use and can see."""
    try:
        requested = int(gpus or 1)
    except (TypeError, ValueError):
        raise CgankdInputError(f"resources.gpu must be a whole number, got {gpus!r}") from None
    if requested <= 1 or device == "cpu" or not torch.cuda.is_available():
        return 1
    visible = torch.cuda.device_count()
    if visible < requested:
        print(f"cgankd: {requested} GPUs requested, {visible} visible: using {visible}",
              file=sys.stderr)
    return max(1, min(requested, visible))


def run_stage(function: Callable[..., Any], kwargs: Mapping[str, Any], *, gpus: Any = 1,
              threads: int | None = None) -> Any:
    """``function(**kwargs)``: here, or in one torchrun worker per granted GPU."""
    nproc = processes_for(gpus, str(kwargs.get("device", "auto")))
    if nproc == 1:
        return function(**kwargs)
    return launch(function, kwargs, nproc, threads=threads)


def torchrun_command(nproc: int, spec: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", "-m", "cgankd.launch", str(spec)]


def launch(function: Callable[..., Any], kwargs: Mapping[str, Any], nproc: int, *,
           threads: int | None = None) -> Any:
    """Run stage ``function`` in ``nproc`` torchrun workers (whatever the device) and wait."""
    name = stage_name(function)  # a function no worker may run fails here, once
    with tempfile.TemporaryDirectory(prefix="cgankd-torchrun-") as tmp:
        folder = Path(tmp)
        spec = folder / SPEC
        spec.write_text(json.dumps({"stage": name, "kwargs": dict(kwargs), "threads": threads},
                                   default=_plain))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH"))
                                            if p)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        status = subprocess.run(torchrun_command(nproc, spec), env=env,
                                stdout=_file_or_none(sys.stdout),
                                stderr=_file_or_none(sys.stderr)).returncode
        errors = sorted(folder.glob(ERROR.format(rank="*")))
        if errors:
            raise CgankdInputError(errors[0].read_text())
        if status != 0:
            raise RuntimeError(f"stage {name}: torchrun with {nproc} processes exited with "
                               f"status {status}; the workers' tracebacks are above")
        return json.loads((folder / RESULT).read_text())


def main(argv: list[str] | None = None) -> int:
    """A torchrun worker: join the group, run the stage from the spec file, rank 0 reports."""
    spec_path = Path((sys.argv[1:] if argv is None else argv)[0])
    with contextlib.ExitStack() as stack:
        for name in ("stdout", "stderr"):  # the job's log file: progress as plain lines
            stream = getattr(sys, name)
            if not stream.isatty():
                stack.enter_context(_replaced(name, LogLines(stream)))
        return _worker(spec_path)


@contextlib.contextmanager
def _replaced(name: str, lines: LogLines) -> Iterator[None]:
    before = getattr(sys, name)
    setattr(sys, name, lines)
    try:
        yield
    finally:
        setattr(sys, name, before)
        lines.close()


def _worker(spec_path: Path) -> int:
    spec = json.loads(spec_path.read_text())
    kwargs = dict(spec["kwargs"])
    world, device = distributed.join(str(kwargs.get("device", "auto")))
    set_threads(spec.get("threads"))
    try:
        result = stage_function(spec["stage"])(**{**kwargs, "device": device})
        if world.main:
            with atomic_path(spec_path.with_name(RESULT)) as tmp:
                tmp.write_text(json.dumps(result, default=_plain))
    except CgankdInputError as err:
        spec_path.with_name(ERROR.format(rank=world.rank)).write_text(str(err))
        print(f"cgankd: error: {err}", file=sys.stderr, flush=True)
        return 1
    finally:
        distributed.leave()
    return 0


def _plain(value: Any) -> Any:
    """JSON for what stages take and return beyond plain types: paths, numpy scalars."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON-able for the launcher: {type(value).__name__}")


def _file_or_none(stream: Any) -> Any:
    """``stream`` if a child process can write to it (a real file: the job's log), else None."""
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return stream


if __name__ == "__main__":
    sys.exit(main())
