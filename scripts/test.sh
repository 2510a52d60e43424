#!/usr/bin/env bash
# The whole test suite: installs what the tests need, type-checks, lints, runs every vitest layer
# (unit, workflows on the time-skipping server, integration against real servers), then prints
# one closing line "vitest: N passed, N failed, N skipped".
# Extra arguments go to vitest (e.g. `npm test -- test/unit`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh
echo "[test] build (dist/ and the workflow bundle; tests that run bin/certflow.mjs or dist/ use it)"
node --import tsx scripts/build.ts
echo "[test] typecheck"
npx tsc --noEmit -p tsconfig.json
echo "[test] lint + format check"
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --check .; exit 1; }
echo "[test] vitest"
results=.tools/vitest-results.json
rm -f "$results"
set +e
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@"
rc=$?
set -e
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  if (r.numTotalTests === 0) { console.error("[test] no test ran"); process.exit(1); }
' "$results" || rc=1
exit $rc
