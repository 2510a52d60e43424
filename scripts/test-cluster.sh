#!/usr/bin/env bash
# `npm run test:cluster`: the integration layer against a real Temporal cluster on PostgreSQL (one process per
# service, 4 history shards) instead of the dev server. Installs the cluster layer first (scripts/install-temporal-
# cluster.sh; the first build takes 4-15 minutes). Runs every integration test file that talks to the shared Temporal
# server; extra arguments go to vitest (e.g. one file). Not part of `npm test`.
# Left out: embedded-start.test.ts (it tests `npm start`, which starts its own dev server with the Web UI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh
bash scripts/install-temporal-cluster.sh
if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(grep -l "inject('temporalAddress')" test/integration/*.test.ts)
fi
echo "[test:cluster] ${#files[@]} file(s) against a Temporal cluster on PostgreSQL"
CERTFLOW_TEST_CLUSTER="${CERTFLOW_TEST_CLUSTER:-services}" exec npx vitest run "${files[@]}"
