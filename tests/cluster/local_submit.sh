#!/usr/bin/env bash
# A stand-in for a scheduler's submit command (qsub, sbatch --parsable, bsub), to test
# profiles/cluster-generic without a cluster: it takes the submit options and the jobscript
# (the last argument), appends the whole command line to $LOCAL_SUBMIT_RECORD when that is set,
# runs the jobscript here in the foreground with its output in the -o folder (as SGE's
# `-o cluster_logs/`), and prints a job id, as `qsub -terse` does. Snakemake learns whether the
# job succeeded from the marker files its jobscript writes, so a failed job still prints an id.
# Used by tests/test_profiles.py as `qsub` on PATH.
set -euo pipefail

jobscript="${*: -1}"
logdir=.
args=("$@")
for ((i = 0; i < ${#args[@]} - 1; i++)); do
    if [[ "${args[i]}" == "-o" ]]; then logdir="${args[i + 1]}"; fi
done
if [[ -n "${LOCAL_SUBMIT_RECORD:-}" ]]; then
    # the command line, then the rule the jobscript runs (its "# properties = {json}" line)
    printf '%s\t%s\n' "$*" "$(sed -n 's/^# properties = //p' "$jobscript")" \
        >> "$LOCAL_SUBMIT_RECORD"
fi
id="local$$"
mkdir -p "$logdir"
bash "$jobscript" > "$logdir/$id.out" 2>&1 || true
echo "$id"
