#!/usr/bin/env bash
# Starts Certflow locally with every part on this machine: see README "Start it".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh
exec node --import tsx scripts/dev-stack.ts "$@"
