#!/usr/bin/env bash
# Install Debian's MPICH as the reference MPI implementation (mpicc.mpich,
# mpiexec.mpich). Used only to validate the example and semantics programs
# and as a benchmark contender, never in Ferry's data path.
# Idempotent: does nothing when MPICH is already there. Exit 2 when it cannot
# be installed because this is not root (callers skip with a message then).
set -euo pipefail
if [ -x /usr/bin/mpicc.mpich ] && [ -x /usr/bin/mpiexec.mpich ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-reference-mpi: MPICH is not installed and installing it needs root (apt-get)" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-reference-mpi: installing Debian's mpich with apt-get" >&2
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends mpich libmpich-dev build-essential >/dev/null
if [ ! -x /usr/bin/mpicc.mpich ]; then
  echo "install-reference-mpi: apt-get finished but /usr/bin/mpicc.mpich is missing" >&2
  exit 1
fi
