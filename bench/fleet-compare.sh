#!/usr/bin/env bash
# The fleet benchmark before and after, in one run, one results file:
#   bash bench/fleet-compare.sh [N] [BEFORE_REF]        # default N=10000, BEFORE_REF=a5997f4 (release 2)
# "before" runs today's bench/fleet.ts on the release-2 tree (a temporary git worktree with this checkout's
# node_modules and Temporal binaries), "after" on this checkout; both with the dev server in WAL mode, the same N and
# wave, one after the other. Writes bench/results/fleet-compare-<N>.json with both results and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
REF=${2:-a5997f4}
WAVE=${WAVE:-1000}
root=$(pwd)
tmp=$(mktemp -d)
wt="$tmp/certflow-before"
cleanup() { git worktree remove --force "$wt" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
git worktree add --detach "$wt" "$REF" >/dev/null
ln -s "$root/node_modules" "$wt/node_modules"
mkdir -p "$wt/.tools" && ln -s "$root/.tools/venv" "$wt/.tools/venv"
cp bench/fleet.ts "$wt/bench/fleet.ts" && cp bench/lib/*.ts "$wt/bench/lib/"
echo "[compare] before: release at $REF (SDK-sized workflow cache), N=$N"
(cd "$wt" && npx tsx bench/fleet.ts --n "$N" --wave "$WAVE" --wal --max-cached 0 --label before)
cp "$wt/bench/results/fleet-$N-wal-before.json" bench/results/
echo "[compare] after: this checkout, N=$N"
npx tsx bench/fleet.ts --n "$N" --wave "$WAVE" --wal --label after
node --input-type=module -e "
import { readFileSync, writeFileSync } from 'node:fs';
const [n] = process.argv.slice(1);
const read = (l) => JSON.parse(readFileSync('bench/results/fleet-' + n + '-wal-' + l + '.json', 'utf8'));
const before = read('before'), after = read('after');
const pick = (r) => ({
  eventsPerCycle: r.history?.eventsPerCycle ?? null,
  eventsFirstRun: r.history?.eventsFirstRun ?? null,
  cpuMsPerRenewal: r.wave?.cpuMsPerRenewal ?? null,
  idleRssMiB: r.memoryMiB?.afterSettle?.rssMiB ?? null,
  cachedWorkflows: r.worker?.cachedWorkflowsAfterSettle ?? null,
  waveRenewalsPerSecond: r.wave?.renewalsPerSecond ?? null,
  startupAllWaitingS: r.startup?.allWaitingMs ? Math.round(r.startup.allWaitingMs / 100) / 10 : null,
});
const b = pick(before), a = pick(after);
const ratio = (x, y) => (x && y ? Math.round((x / y) * 100) / 100 : null);
const out = {
  benchmark: 'fleet-compare', n: Number(n), at: new Date().toISOString(), before: b, after: a,
  ratios: {
    eventsPerCycle: ratio(b.eventsPerCycle, a.eventsPerCycle),
    serverCpuPerRenewal: ratio(b.cpuMsPerRenewal?.temporalServer, a.cpuMsPerRenewal?.temporalServer),
    workerCpuPerRenewal: ratio(b.cpuMsPerRenewal?.worker, a.cpuMsPerRenewal?.worker),
    idleRss: ratio(b.idleRssMiB, a.idleRssMiB),
  },
  runs: { before, after },
};
writeFileSync('bench/results/fleet-compare-' + n + '.json', JSON.stringify(out, null, 2) + '\n');
console.log(JSON.stringify({ before: b, after: a, ratios: out.ratios }, null, 2));
" "$N"
echo "[compare] wrote bench/results/fleet-compare-$N.json"
