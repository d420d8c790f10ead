#!/usr/bin/env bash
# Make this checkout ready to run: npm packages, a build, and a working CRIU.
# Idempotent and quiet when there is nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages (builds better-sqlite3 and zeromq natively, about 2 minutes the first time)" >&2
  npm install --no-audit --no-fund >&2
fi
bash scripts/build.sh
if [ -f dist/src/criu/provision-main.js ]; then
  node dist/src/criu/provision-main.js >&2
fi
