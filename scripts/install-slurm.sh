#!/usr/bin/env bash
# Install Debian's Slurm (slurmctld, slurmd, srun) and MUNGE, so the launcher
# hook is tested under a real srun (test/cli/rank-exec-slurm.test.ts). The
# tests start their own munged, slurmctld and slurmds inside their namespace
# hosts, with configuration and keys in their temp dir: nothing here is
# configured or started, and a package's wish to start its service at install
# is refused (policy-rc.d) when this machine has no policy of its own.
# Idempotent: does nothing when the programs are there. Exit 2 when it cannot
# install them because this is not root (callers skip with a message then).
set -euo pipefail
if [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && [ -x /usr/bin/srun ] && [ -x /usr/sbin/munged ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-slurm: Slurm is not installed and installing it needs root (apt-get)" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  own_policy=1
fi
trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
echo "install-slurm: installing Debian's slurmctld, slurmd, slurm-client and munge with apt-get" >&2
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
for p in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/srun /usr/sbin/munged; do
  if [ ! -x "$p" ]; then
    echo "install-slurm: apt-get finished but $p is missing" >&2
    exit 1
  fi
done
