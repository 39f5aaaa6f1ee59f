#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for `make test-slurm`: installs the Debian packages
# if missing, writes a minimal slurm.conf (no cgroups, no accounting), starts munged, slurmctld
# and slurmd, and waits until the node is idle. Idempotent: a running cluster is left as it is.
# Exit 0: ready. Exit 3: cannot be done here (prints one line why). Other codes: a real failure.
set -euo pipefail

skip() { echo "skip: $*"; exit 3; }

if [ "$(id -u)" != 0 ]; then skip "a local SLURM cluster needs root"; fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
    || ! command -v sinfo >/dev/null; then
    command -v apt-get >/dev/null || skip "slurmctld/slurmd/munge are not installed and there is no apt-get"
    echo "installing slurmctld slurmd munge (apt-get)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            slurmctld slurmd slurm-client munge; } >/tmp/w2vlens-slurm-apt.log 2>&1; then
        if grep -qiE "could not resolve|failed to fetch|temporary failure|unable to locate" /tmp/w2vlens-slurm-apt.log; then
            skip "the Debian package registry is unreachable (see /tmp/w2vlens-slurm-apt.log)"
        fi
        echo "apt-get install failed: see /tmp/w2vlens-slurm-apt.log" >&2
        exit 1
    fi
fi

node_state() { sinfo -h -N -o %T 2>/dev/null | head -n1; }
case "$(node_state)" in idle|mixed|allocated) echo "SLURM cluster already up"; exit 0;; esac

HOST=$(hostname -s)
CPUS=$(nproc)
MEMORY_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/munge /var/log/munge
cat > /etc/slurm/slurm.conf <<CONF
# Written by w2vlens scripts/slurm_cluster.sh: one node, no cgroups, no accounting (tests only).
ClusterName=w2vlens
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
InactiveLimit=0
KillWait=5
MinJobAge=600
NodeName=$HOST CPUs=$CPUS RealMemory=$MEMORY_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF

if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    mungekey --create --keyfile /etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chmod 400 /etc/munge/munge.key
fi
if ! pgrep -x munged >/dev/null; then
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    if id munge >/dev/null 2>&1; then runuser -u munge -- /usr/sbin/munged; else /usr/sbin/munged --force; fi
fi
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd

for _ in $(seq 60); do
    state=$(node_state)
    case "$state" in
        idle|mixed|allocated) echo "SLURM cluster up: node $HOST ($CPUS CPUs, ${MEMORY_MB} MB) $state"; exit 0;;
        down*|drain*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true;;
    esac
    sleep 1
done
echo "the SLURM node did not become idle (state: ${state:-none}); see /var/log/slurm/" >&2
exit 1
