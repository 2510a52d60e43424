#!/usr/bin/env bash
# `npm start`: Certflow on this machine (Temporal + Web UI, worker, local vault, dev CA, mail sink, demo site).
# Needs Node and the Temporal CLI only: the setup below installs the npm packages and the CLI into .tools/
# (its Debian part, pebble and nginx, is for the tests: a failure there does not stop the start).
# This dev stack runs through tsx; the worker it starts runs from the build (dist/), as in production.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! bash scripts/install-tools.sh; then
  echo "[start] setup did not finish (see above); starting with what is installed" >&2
fi
# seconds: esbuild, and the workflow bundle is kept when it still matches its sources
node --import tsx scripts/build.ts
exec node --import tsx scripts/dev-stack.ts "$@"
