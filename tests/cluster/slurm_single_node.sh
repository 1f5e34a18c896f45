#!/usr/bin/env bash
# The SLURM path end to end on a real scheduler: as root on Debian 12, start a one-node SLURM
# cluster on this machine (munge, MariaDB + slurmdbd so that `sacct` works, slurmctld, slurmd),
# then run the tiny pipeline of tests/test_workflow_pipeline.py
#   1. locally (snakemake --cores 2) and through `snakemake --profile profiles/slurm`, and check
#      that both give the same data, fakes, weights and table;
#   2. through SLURM again from a fresh folder, `scancel` one running job, and check that a rerun
#      with --rerun-incomplete recovers and finishes with the same results.
# Usage:  sudo bash tests/cluster/slurm_single_node.sh      (15-20 minutes on 2 busy cores)
# Every daemon runs from a private folder (config, keys, database, logs) with its own ports
# (munged at its default socket, /run/munge; the SLURM config files in /etc/slurm, restored on
# exit); every daemon this script started is stopped on exit, also on failure.
# Env: PYTHON (default .venv/bin/python); KEEP=1 keeps the private folder for inspection;
# REFERENCE=DIR compares with that folder, a finished local run of the tiny config, instead of
# running one.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
SNAKEMAKE=("$PYTHON" -m snakemake)
PARTITION=cgankdq   # test names, given on the command line as a user would give theirs
ACCOUNT=cgankdacct
CLUSTER=cgankdtest
# Ports away from SLURM's and MariaDB's defaults, so a system instance is never touched.
CTLD_PORT=16817 SLURMD_PORT=16818 DBD_PORT=16819 DB_PORT=16820
STARTED=$(date +%s)

log() { echo "[slurm-test $(($(date +%s) - STARTED))s] $*"; }
die() { log "FAIL: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (it installs packages and starts daemons)"
for daemon in slurmctld slurmd slurmdbd; do
  if pgrep -x "$daemon" >/dev/null; then die "a $daemon is already running; stop it first"; fi
done

# --- install (skipped when present) ---------------------------------------------------------
need=()
for pair in slurmctld:slurmctld slurmd:slurmd slurmdbd:slurmdbd sacct:slurm-client \
            munged:munge mariadbd:mariadb-server; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if ((${#need[@]})); then
  log "apt-get install ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
# The executor plugin, as the `slurm` extra in pyproject.toml pins it (one place for the pin).
if ! "$PYTHON" -m pip show -q snakemake-executor-plugin-slurm 2>/dev/null; then
  spec=$("$PYTHON" -c 'import sys, tomllib
print(" ".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["slurm"]))' \
    "$REPO/pyproject.toml")
  log "pip install $spec"
  # shellcheck disable=SC2086  # the spec is a space-separated list of requirements
  "$PYTHON" -m pip install -q $spec
fi

# --- private state folder; everything is stopped on exit ---------------------------------------
ST=$(mktemp -d /tmp/cgankd-slurm.XXXXXX)
chmod 755 "$ST"  # munged wants every folder above its socket searchable by all
mkdir -p -m 755 "$ST/run" "$ST/etc" "$ST/log" "$ST/spool/ctld" "$ST/spool/slurmd" "$ST/runs"
mkdir -p -m 700 "$ST/munge"
mkdir -p "$ST/mysql" && chown mysql:mysql "$ST/mysql"  # MariaDB writes its socket there

stop_pid() {  # stop_pid PID SECONDS: SIGTERM, then SIGKILL if still there after SECONDS
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq "$(($2 * 5))"); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$1" 2>/dev/null || true
}
local_pid="" snake_pid=""  # Snakemake runs in the background, stopped on exit
INSTALLED_CONF=()  # our files in /etc/slurm, removed (and any saved ones put back) on exit
stop_daemons() {
  local rc=$? pidfile pid
  # A Snakemake still running (after a failure) first: it scancels its own SLURM jobs.
  for pid in ${local_pid:-} ${snake_pid:-}; do stop_pid "$pid" 60; done
  # Reverse start order; each daemon by its own pid file (nothing else on the machine is touched).
  for pidfile in "$ST/run/slurmd.pid" "$ST/run/slurmctld.pid" "$ST/run/slurmdbd.pid" \
                 "$ST/mysql/mysqld.pid" "$ST/run/munged.pid"; do
    [[ -s $pidfile ]] && stop_pid "$(cat "$pidfile")" 10
  done
  for f in "${INSTALLED_CONF[@]}"; do
    rm -f "/etc/slurm/$f"
    if [[ -e $ST/etc-saved/$f ]]; then mv "$ST/etc-saved/$f" "/etc/slurm/$f"; fi
  done
  if ((rc != 0)); then
    for f in "$ST"/log/{munged,slurmdbd,slurmctld,slurmd}.log "$ST/mysql/error.log"; do
      [[ -s $f ]] && { echo "--- tail of $f"; tail -n 15 "$f"; }
    done
  fi
  if [[ ${KEEP:-0} == 1 || $rc != 0 ]]; then log "state kept in $ST"; else rm -rf "$ST"; fi
  log "daemons stopped; exit $rc"
}
trap stop_daemons EXIT
trap 'exit 130' INT TERM

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll until the command succeeds
  local limit=$1 what=$2; shift 2
  for _ in $(seq "$((limit * 2))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  die "timed out after ${limit}s waiting for $what"
}

# --- munge ------------------------------------------------------------------------------------
# SLURM 22.05's clients reach munged only at its default socket (AuthInfo=socket= is not used
# on every path, e.g. sacctmgr -> slurmdbd), so ours listens there; one already running is used.
if munge -n >/dev/null 2>&1; then
  log "using the munged already running"
else
  mkdir -p -m 755 /run/munge
  mungekey -c -k "$ST/munge/munge.key"
  munged --key-file="$ST/munge/munge.key" --pid-file="$ST/run/munged.pid" \
    --log-file="$ST/log/munged.log" --seed-file="$ST/munge/munged.seed"
  wait_for 10 munged bash -c "munge -n | unmunge"
fi
log "munged up"

# --- MariaDB for slurmdbd ---------------------------------------------------------------------
DB_PASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mariadb-install-db --no-defaults --user=mysql --datadir="$ST/mysql/data" \
  --auth-root-authentication-method=socket --skip-test-db >"$ST/log/mariadb-install.log" 2>&1
mariadbd --no-defaults --user=mysql --datadir="$ST/mysql/data" --socket="$ST/mysql/mysql.sock" \
  --pid-file="$ST/mysql/mysqld.pid" --bind-address=127.0.0.1 --port=$DB_PORT \
  --log-error="$ST/mysql/error.log" --innodb-buffer-pool-size=64M &
wait_for 60 MariaDB mariadb --socket="$ST/mysql/mysql.sock" -e "select 1"
mariadb --socket="$ST/mysql/mysql.sock" <<SQL
CREATE USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL
log "MariaDB up"

# --- SLURM config -----------------------------------------------------------------------------
HOST=$(hostname -s)
# The node's real memory, but at least the 8 GB the cgankd rules ask for (memory is not a
# consumable here, CR_CPU, so this only lets the requests be scheduled on a small machine).
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
MEM=$((MEM > 8192 ? MEM : 8192))
cat >"$ST/etc/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# No systemd and no cgroup v2 delegation in a container: plain process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdParameters=config_overrides
StateSaveLocation=$ST/spool/ctld
SlurmdSpoolDir=$ST/spool/slurmd
SlurmctldPidFile=$ST/run/slurmctld.pid
SlurmdPidFile=$ST/run/slurmd.pid
SlurmctldLogFile=$ST/log/slurmctld.log
SlurmdLogFile=$ST/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
AccountingStorageEnforce=associations
JobCompType=jobcomp/none
# Two stand-in GPUs (gres.conf below): the rules' gpu=1 becomes --gpus=1 exactly as on a GPU
# cluster and is scheduled; the jobs then see no CUDA device and run on the CPU.
GresTypes=gpu
NodeName=$HOST CPUs=2 RealMemory=$MEM Gres=gpu:2 State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
# SLURM counts a GPU only through a device file; two copies of /dev/null's device stand in
# (a plain file also counts, with an error logged, where mknod is not allowed).
mkdir -p "$ST/dev"
for i in 0 1; do mknod "$ST/dev/gpu$i" c 1 3 2>/dev/null || touch "$ST/dev/gpu$i"; done
echo "NodeName=$HOST Name=gpu File=$ST/dev/gpu[0-1]" >"$ST/etc/gres.conf"
cat >"$ST/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
PidFile=$ST/run/slurmdbd.pid
LogFile=$ST/log/slurmdbd.log
EOF
chmod 600 "$ST/etc/slurmdbd.conf"
# The files go to /etc/slurm, where every SLURM command looks: SLURM_CONF pointing elsewhere is
# not enough, as the executor's job step (snakemake-executor-plugin-slurm-jobstep) drops every
# SLURM_* variable before its nested srun. Files already there are put back on exit.
unset SLURM_CONF
mkdir -p /etc/slurm "$ST/etc-saved"
for f in slurm.conf gres.conf slurmdbd.conf; do
  if [[ -e /etc/slurm/$f ]]; then mv "/etc/slurm/$f" "$ST/etc-saved/$f"; fi
  INSTALLED_CONF+=("$f")
  cp -p "$ST/etc/$f" "/etc/slurm/$f"
done

# --- daemons ----------------------------------------------------------------------------------
slurmdbd
wait_for 60 slurmdbd sacctmgr -n list cluster
sacctmgr -i add cluster "$CLUSTER" >/dev/null
sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description=cgankd-test >/dev/null
sacctmgr -i add user "$(id -un)" account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
slurmctld
wait_for 60 slurmctld scontrol ping
slurmd
node_idle() { [[ $(sinfo -h -n "$HOST" -o %t) == idle ]]; }
wait_for 90 "node $HOST idle in sinfo" node_idle
log "cluster up: $(sinfo -h -o '%P %D %t %c cpus')"
# Accounting must answer too: the executor plugin polls job states with sacct.
sacct -n -X -a >/dev/null || die "sacct does not answer"

# --- the tiny pipeline --------------------------------------------------------------------------
RUNS=$ST/runs
CONFIG=$RUNS/tiny.yaml
# The same tiny config as the pipeline test (one definition: imported from it).
(cd "$REPO/tests" && "$PYTHON" -c 'import sys, yaml
from test_workflow_pipeline import TINY
open(sys.argv[1], "w").write(yaml.safe_dump(TINY))' "$CONFIG")

SLURM_ARGS=(-s "$REPO/Snakefile" --configfile "$CONFIG" --profile "$REPO/profiles/slurm"
  --default-resources "slurm_partition=$PARTITION" "slurm_account=$ACCOUNT"
  # A fast first status check: the plugin's 40 s default would dominate tiny jobs.
  --slurm-init-seconds-before-status-checks 2 --latency-wait 5)
slurm_run() {  # slurm_run DIR [EXTRA ARGS...]: through the profile, partition and account given
  local dir=$1; shift
  "${SNAKEMAKE[@]}" "${SLURM_ARGS[@]}" -d "$dir" "$@"
}

if [[ -n ${REFERENCE:-} ]]; then
  log "SLURM run; local reference: $REFERENCE (a finished local run of the same tiny config)"
  LOCAL=$REFERENCE
else
  log "SLURM run, and the local run beside it"
  LOCAL=$RUNS/local
  # Started directly in the background, so $! is Snakemake itself (stopped on exit).
  "${SNAKEMAKE[@]}" -s "$REPO/Snakefile" -d "$LOCAL" --configfile "$CONFIG" --cores 2 \
    >"$LOCAL.out" 2>&1 &
  local_pid=$!
fi
slurm_run "$RUNS/slurm" >"$RUNS/slurm.out" 2>&1 || {
  tail -n 60 "$RUNS/slurm.out"; die "SLURM run failed (log: $RUNS/slurm.out)"; }
# Every job went through sbatch, and accounting (what the plugin polls) saw each one complete.
ids=$(sed -n 's/.*submitted with SLURM jobid \([0-9]*\).*/\1/p' "$RUNS/slurm.out" | paste -sd,)
[[ -n $ids ]] || die "no job went through sbatch"
n_sub=$(tr , '\n' <<<"$ids" | wc -l)
n_done=$(sacct -n -X -P -j "$ids" -o State | grep -c '^COMPLETED$' || true)
log "SLURM run done: $n_done of $n_sub sbatch jobs COMPLETED in sacct"
((n_done == n_sub)) || die "sacct: $(sacct -n -X -P -j "$ids" -o State | sort | uniq -c | xargs)"
if [[ -z ${REFERENCE:-} ]]; then
  wait "$local_pid" || { tail -n 40 "$LOCAL.out"; die "the local run failed (log: $LOCAL.out)"; }
  local_pid=""
  log "local run done"
fi
"$PYTHON" "$REPO/tests/cluster/compare_runs.py" "$LOCAL" "$RUNS/slurm" \
  || die "SLURM results differ from the local run's"

# --- kill one job mid-way, rerun, recover -------------------------------------------------------
log "SLURM run to be interrupted"
"${SNAKEMAKE[@]}" "${SLURM_ARGS[@]}" -d "$RUNS/cancel" >"$RUNS/cancel.out" 2>&1 &
snake_pid=$!
victim=""
# The GAN is the longest single job of the tiny run: cancel it once it is running.
for _ in $(seq 600); do
  victim=$(squeue -h -t R -o '%i %k' | awk '$2 ~ /^rule_train_cgan/ {print $1; exit}')
  [[ -n $victim ]] && break
  kill -0 $snake_pid 2>/dev/null || break
  sleep 0.5
done
[[ -n $victim ]] || { wait $snake_pid || true; tail -n 40 "$RUNS/cancel.out"
  die "train_cgan was never seen running"; }
sleep 2
log "scancel $victim (train_cgan)"
scancel "$victim"
# Snakemake must see the job fail (through the profile's status command) and stop with an error.
for _ in $(seq 600); do kill -0 $snake_pid 2>/dev/null || break; sleep 0.5; done
kill -0 $snake_pid 2>/dev/null && die "Snakemake still waits 300 s after job $victim was cancelled"
if wait $snake_pid; then die "Snakemake succeeded although job $victim was cancelled"; fi
snake_pid=""
grep -q "SLURM-job '$victim' failed" "$RUNS/cancel.out" || die "Snakemake did not report job $victim"
state=$(sacct -n -X -j "$victim" -o State | awk '{print $1}')
log "job $victim ended as $state; Snakemake stopped with an error as it should"
[[ $state == CANCELLED* ]] || die "job $victim ended as '$state', not CANCELLED"
log "rerun with --rerun-incomplete"
slurm_run "$RUNS/cancel" --rerun-incomplete >"$RUNS/rerun.out" 2>&1 || {
  tail -n 60 "$RUNS/rerun.out"; die "the rerun after scancel failed"; }
grep -q "train_cgan" "$RUNS/rerun.out" || die "the rerun did not run train_cgan again"
"$PYTHON" "$REPO/tests/cluster/compare_runs.py" "$LOCAL" "$RUNS/cancel" \
  || die "results after scancel + rerun differ from the local run's"
log "PASS: one-node SLURM: results equal the local run's; a scancelled job recovered on rerun"
