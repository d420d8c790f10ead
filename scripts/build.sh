#!/usr/bin/env bash
# Build everything Ferry runs from: generated protocol types, the TypeScript
# daemons and CLI (dist/), and the native parts (build/).
set -euo pipefail
cd "$(dirname "$0")/.."
node scripts/gen-proto-types.mjs
npx tsc -p tsconfig.json
for dir in src/native src/runtime; do
  if [ -f "$dir/Makefile" ]; then
    make -s -C "$dir" BUILD_DIR="$PWD/build"
  fi
done
