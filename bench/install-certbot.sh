#!/usr/bin/env bash
# The peer of bench/wave.ts: Debian's certbot (bookworm: 2.1.0), the certbot the issue names and the one the
# 2.11 s-per-certificate figure was measured with. Idempotent: does nothing when /usr/bin/certbot is there.
# Needs root for apt-get, like scripts/install-tools.sh's pebble and nginx. (PyPI's certbot would avoid root, but is
# a newer release than the one Debian users run, so it would not be the peer the issue compares against.)
# Debian's package also installs a twice-daily `certbot renew` timer/cron job: with no lineages in /etc/letsencrypt
# it does nothing; the benchmark keeps its own lineages in its temp dir (--config-dir).
set -euo pipefail
say() { echo "[install-certbot] $*"; }
die() { echo "[install-certbot] $*" >&2; exit 1; }

if [ ! -x /usr/bin/certbot ]; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || die "certbot missing: as root run apt-get install certbot"
  say "apt-get install certbot"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends certbot >/dev/null \
    || { if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; die "apt-get install certbot failed"; }
  if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
say "certbot ready: $(/usr/bin/certbot --version 2>&1)"
