"""python -m cgankd.study STUDY.yaml [--configfile EXP.yaml] [--cores N] [--dry-run]
[--directory DIR] [--factor NAME ...] [-- extra Snakemake arguments]"""

import argparse
import sys

from cgankd.errors import CgankdInputError
from cgankd.study.runner import StudyFailed, execute, prepare, report


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        prog="python -m cgankd.study",
        description="Run a study (config/studies/*.yaml): the base point and one Snakemake run "
                    "per factor level, then results/<experiment>-<study>/study.{csv,png}.",
        epilog="Options after -- go to every Snakemake run, e.g. -- --rerun-incomplete "
               "(options only: each run's targets are its config's).")
    parser.add_argument("study", help="the study file, e.g. config/studies/gain.yaml")
    parser.add_argument("--configfile", help="the experiment config the study varies "
                        "(default: config/config.yaml)")
    parser.add_argument("--cores", default="all", help="Snakemake --cores (default: all)")
    parser.add_argument("--dry-run", "-n", action="store_true",
                        help="write the point configs and links, then show each point's "
                             "Snakemake plan without running a job")
    parser.add_argument("--directory", "-d", default=".",
                        help="the working directory results/ lives in (default: .)")
    parser.add_argument("--factor", action="append", default=[],
                        help="run only this factor's points (repeatable); the base always runs")
    args = parser.parse_args(argv)
    try:
        run = prepare(args.study, args.configfile, args.directory, args.factor,
                      cores=args.cores, snakemake_args=tuple(extra))
        rows = execute(run, dry_run=args.dry_run)
        if args.dry_run:
            return 0
        csv_path, png_path = report(run, rows)
    except (CgankdInputError, StudyFailed) as err:
        print(f"cgankd study: {err}", file=sys.stderr)
        return 2 if isinstance(err, CgankdInputError) else 1
    print(f"cgankd study: {csv_path} and {png_path}")
    if run.failed:
        print(f"cgankd study: failed points (rerun the same command to retry): "
              f"{', '.join(run.failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
