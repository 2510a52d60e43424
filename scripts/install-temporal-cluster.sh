#!/usr/bin/env bash
# The opt-in real-cluster layer (idempotent; seconds when everything is present), into the git-ignored .tools/cluster:
#   - the Temporal server and its SQL schema tool, built from the Go module proxy (go.temporal.io/server v1.32.2,
#     which declares Go 1.26.10: GOTOOLCHAIN makes the go command fetch that toolchain from the proxy). The first
#     build takes 4-15 minutes on 2 cores and leaves about 3 GB of module and build caches in .tools/cluster/go-cache
#     (kept, so a rebuild is quick; delete the folder to reclaim the space);
#   - PostgreSQL 15 from Debian (`postgresql-15`, apt-get when missing; needs root);
#   - .tools/cluster/pg-template: a PostgreSQL data directory with the `temporal` and `temporal_visibility` schemas
#     applied (postgres12 plugin; the schemas are embedded in the SQL tool), copied by each cluster start.
# Then `npm run cluster` starts a cluster and `npm run test:cluster` runs the integration layer on one.
# Needs Go >= 1.21 on PATH (for the toolchain download) and the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
TEMPORAL_SERVER_VERSION="v1.32.2"
GO_TOOLCHAIN="go1.26.10"
UI_SERVER_VERSION="v2.56.4"
C=".tools/cluster"
mkdir -p "$C/bin" "$C/go-cache"
C="$(cd "$C" && pwd)"

say() { printf '[cluster-setup] %s\n' "$*"; }
die() { printf '[cluster-setup] ERROR: %s\n' "$*" >&2; exit 1; }

# --- the Temporal server and SQL tool -----------------------------------------------------------------------
want="server@$TEMPORAL_SERVER_VERSION $GO_TOOLCHAIN"
if [ "$(cat "$C/bin/.stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$C/bin/server" ] || [ ! -x "$C/bin/sql" ]; then
  command -v go >/dev/null || die "go not found: install Go 1.21 or newer (https://go.dev/dl, or Debian's golang-go) so it can fetch $GO_TOOLCHAIN"
  say "building go.temporal.io/server $TEMPORAL_SERVER_VERSION (server + sql tool) with $GO_TOOLCHAIN: 4-15 minutes on 2 cores, ~3 GB of caches in $C/go-cache"
  t0=$(date +%s)
  GOTOOLCHAIN="$GO_TOOLCHAIN" GOBIN="$C/bin" GOMODCACHE="$C/go-cache/mod" GOCACHE="$C/go-cache/build" \
    GOPATH="$C/go-cache/gopath" nice -n 10 go install \
    "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" \
    "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION" \
    || die "go install failed (needs the Go module proxy; see the output above)"
  echo "$want" > "$C/bin/.stamp"
  say "built in $(( $(date +%s) - t0 )) s"
fi
"$C/bin/server" --help >/dev/null || die "$C/bin/server does not run"

# --- optional: the Web UI server (CERTFLOW_CLUSTER_UI=1) ---------------------------------------------------------
if [ "${CERTFLOW_CLUSTER_UI:-}" = 1 ] && [ ! -x "$C/bin/server-ui" ]; then
  say "building github.com/temporalio/ui-server/v2 $UI_SERVER_VERSION"
  tmp="$C/go-cache/ui-bin"
  GOTOOLCHAIN="$GO_TOOLCHAIN" GOBIN="$tmp" GOMODCACHE="$C/go-cache/mod" GOCACHE="$C/go-cache/build" \
    GOPATH="$C/go-cache/gopath" nice -n 10 go install "github.com/temporalio/ui-server/v2/cmd/server@$UI_SERVER_VERSION" \
    || die "go install of the UI server failed"
  mv "$tmp/server" "$C/bin/server-ui"
fi

# --- PostgreSQL 15 (Debian) ------------------------------------------------------------------------------------
PG_BIN="${CERTFLOW_PG_BIN_DIR:-/usr/lib/postgresql/15/bin}"
if [ ! -x "$PG_BIN/postgres" ] || [ ! -x "$PG_BIN/initdb" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "apt-get install postgresql-15"
    export DEBIAN_FRONTEND=noninteractive
    own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then # keep apt from starting the system's own PostgreSQL on port 5432
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
    fi
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null || die "apt-get install postgresql-15 failed"
    [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
  else
    die "PostgreSQL 15 not found in $PG_BIN: apt-get install postgresql-15 (as root), or set CERTFLOW_PG_BIN_DIR"
  fi
fi
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root, PostgreSQL needs the 'postgres' user (Debian's package makes it)"
fi

# --- the schema template ---------------------------------------------------------------------------------------
if [ ! -f "$C/pg-template/PG_VERSION" ] || [ "$(cat "$C/pg-template.stamp" 2>/dev/null)" != "$want" ]; then
  say "making $C/pg-template (initdb + both schemas)"
  node --import tsx scripts/temporal-cluster.ts make-template || die "could not make the PostgreSQL template"
  echo "$want" > "$C/pg-template.stamp"
fi
say "ready: npm run cluster (a cluster until Ctrl-C), npm run test:cluster (the integration layer on one)"
