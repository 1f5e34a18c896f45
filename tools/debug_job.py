"""Run the one Snakemake job that makes a file, in the foreground of this Python process.

    python tools/debug_job.py results/digits/fake/chain0/filtered.h5 [--configfile F ...]
        [--pdb] [-d WORKDIR] [-s SNAKEFILE] [--cores N]

Snakemake runs a rule's ``script:`` in a child process with a pickled ``snakemake`` object, out
of reach of a debugger or a profiler. This tool asks Snakemake's Python API for the DAG with the
given path as target, takes the job whose outputs include it, builds the object the rule's
adapter (``workflow_scripts/<rule>.py``) reads (the job's own input, output, params, log,
wildcards, threads, resources, config and rule name) and runs the adapter here with ``runpy``.
``--pdb`` opens a post-mortem debugger at the exception; ``python -m cProfile -o job.prof
tools/debug_job.py ...`` profiles the job. The job's inputs must exist (a missing one is named
in one line with the command that makes it); its output is overwritten; its log is written
as under Snakemake. Snakemake's own records (.snakemake/) are not touched, so a later
``snakemake`` run still decides from its own metadata whether the output is up to date.

Outside the package on purpose: ``cgankd/`` never imports Snakemake.
"""

import argparse
import contextlib
import os
import pdb
import runpy
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


class DebugJobError(Exception):
    """A problem this tool reports in one line (no rule makes the path, inputs missing...)."""


@dataclass
class JobObject:
    """The ``snakemake`` global a rule's script receives (snakemake.iocontainers.Snakemake),
    with Snakemake's own named lists, so ``.input.get``, ``.output.items()``, ``.log[0]`` and
    attribute access behave as in a real job."""

    input: Any
    output: Any
    params: Any
    wildcards: Any
    threads: int
    resources: Any
    log: Any
    config: dict
    rule: str
    scriptdir: str
    bench_iteration: Any = None


@dataclass
class FoundJob:
    snakemake: JobObject
    script: Path
    missing: list[str]


def find_job(target: str, snakefile: Path, workdir: Path, configfiles: list[Path],
             cores: int) -> FoundJob:
    """The job of ``snakefile``'s DAG (run in ``workdir``) whose outputs include ``target``."""
    from snakemake.api import SnakemakeApi
    from snakemake.exceptions import MissingRuleException, RuleException, WorkflowError
    from snakemake.settings.types import (ConfigSettings, DAGSettings, OutputSettings,
                                          Quietness, ResourceSettings)

    # Quiet: the DAG's progress lines and Snakemake's own error report would bury our one line.
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=cores),
            config_settings=ConfigSettings(configfiles=configfiles),
            snakefile=snakefile, workdir=workdir)
        # The DAG API runs or prints a DAG but does not hand it out; the calls below are what
        # its printdag() runs. nolock: debugging beside a running Snakemake must not fight
        # over (or leave behind) its lock.
        try:
            workflow_api.dag(DAGSettings(targets={target}))  # parses the Snakefile
            workflow = workflow_api._workflow
            workflow._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True,
                                  nolock=True)
            workflow._build_dag()
        except MissingRuleException:
            raise DebugJobError(f"{target}: no rule of {snakefile} makes this path") from None
        except (WorkflowError, RuleException) as err:
            raise DebugJobError(" ".join(str(err).split())) from None
        wanted = os.path.normpath(target)
        jobs = [job for job in workflow.dag.jobs
                if wanted in {os.path.normpath(str(f)) for f in job.output}]
        if not jobs:
            raise DebugJobError(f"{target}: no rule of {snakefile} makes this path")
        job = jobs[0]
        if not job.rule.is_script:
            raise DebugJobError(f"{target}: rule {job.rule.name} has no script: to run")
        basedir = Path(job.rule.basedir.get_path_or_uri(secret_free=True))
        script = (basedir / job.rule.script).resolve()
        found = JobObject(
            input=job.input._plainstrings(), output=job.output._plainstrings(),
            params=job.params, wildcards=job.wildcards, threads=job.threads,
            resources=job.resources, log=job.log._plainstrings(), config=workflow.config,
            rule=job.rule.name, scriptdir=str(script.parent))
        missing = [str(f) for f in job.input if not os.path.exists(str(f))]
        return FoundJob(found, script, missing)


def make_command(missing: list[str], snakefile: Path, workdir: Path,
                 configfiles: list[Path]) -> str:
    """The snakemake command line that makes ``missing`` (targets after ``--``: --configfile
    takes several values and would swallow them)."""
    cmd = ["snakemake", "--cores", "all"]
    if snakefile != REPO / "Snakefile":
        cmd += ["-s", str(snakefile)]
    if workdir != Path.cwd():
        cmd += ["-d", str(workdir)]
    if configfiles:
        cmd += ["--configfile", *map(str, configfiles)]
    return shlex.join([*cmd, "--", *missing])


@contextlib.contextmanager
def _debugger_at_errors(stage_job):
    """``cgankd.jobs.stage_job``, with a post-mortem debugger opened before it turns an
    exception into its one-line exit (which would leave nothing to inspect). The debugger talks
    to the terminal: stage_job has redirected stdout and stderr to the job's log."""

    @contextlib.contextmanager
    def wrapped(*args, **kwargs):
        with stage_job(*args, **kwargs):
            try:
                yield
            except Exception:
                debugger = pdb.Pdb(stdin=sys.__stdin__, stdout=sys.__stdout__)
                debugger.reset()
                debugger.interaction(None, sys.exc_info()[2])
                raise

    import cgankd.jobs

    cgankd.jobs.stage_job = wrapped
    try:
        yield
    finally:
        cgankd.jobs.stage_job = stage_job


def run_job(found: FoundJob, post_mortem: bool = False) -> None:
    """Run the job's adapter with its ``snakemake`` object, as Snakemake's script: would, after
    creating the output and log folders (Snakemake's job does that before its script runs)."""
    job = found.snakemake
    for path in [*job.output, *job.log]:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    debugging = contextlib.nullcontext()
    if post_mortem:
        import cgankd.jobs

        debugging = _debugger_at_errors(cgankd.jobs.stage_job)
    with debugging:
        runpy.run_path(str(found.script), init_globals={"snakemake": job}, run_name="__main__")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="an output file of the job, relative to the workdir")
    parser.add_argument("--configfile", nargs="+", type=Path, default=[],
                        help="as snakemake's --configfile")
    parser.add_argument("-s", "--snakefile", type=Path, default=REPO / "Snakefile")
    parser.add_argument("-d", "--directory", type=Path, default=Path.cwd(),
                        help="working directory, as snakemake's -d (default: here)")
    parser.add_argument("--cores", type=int, default=os.cpu_count(),
                        help="caps the job's threads, as snakemake's --cores (default: all)")
    parser.add_argument("--pdb", action="store_true",
                        help="open a post-mortem debugger where the job raises")
    args = parser.parse_args(argv)
    # Absolute before Snakemake changes into the workdir.
    configfiles = [p.resolve() for p in args.configfile]
    snakefile, workdir = args.snakefile.resolve(), args.directory.resolve()
    for path in [snakefile, workdir, *configfiles]:
        if not path.exists():
            print(f"debug_job: error: {path}: no such file or directory", file=sys.stderr)
            return 1
    here = Path.cwd()
    try:
        found = find_job(args.target, snakefile, workdir, configfiles, args.cores)
    except DebugJobError as err:
        print(f"debug_job: error: {err}", file=sys.stderr)
        return 1
    finally:
        os.chdir(here)  # the workflow API moved into the workdir; the job runs there below
    job = found.snakemake
    if found.missing:
        command = make_command(found.missing, snakefile, workdir, configfiles)
        print(f"debug_job: error: rule {job.rule} needs missing inputs "
              f"{', '.join(found.missing)}; make them with: {command}", file=sys.stderr)
        return 1
    print(f"debug_job: rule {job.rule} {dict(job.wildcards.items())} -> "
          f"{', '.join(job.output)} (script {found.script}; log {', '.join(job.log)})",
          file=sys.stderr)
    os.chdir(workdir)
    try:
        run_job(found, post_mortem=args.pdb)
    finally:
        os.chdir(here)
    return 0


if __name__ == "__main__":
    sys.exit(main())
