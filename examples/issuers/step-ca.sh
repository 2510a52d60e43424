#!/usr/bin/env bash
# Certflow command issuer for a smallstep step-ca: signs the CSR on stdin with `step ca sign` and prints the
# chain (leaf, then intermediate) on stdout. Contract: docs/command-issuer.md.
#
# Worker configuration (example):
#   command: /opt/certflow/step-ca.sh
#   env:     STEPPATH=/var/lib/certflow/step        (holds config/defaults.json and certs/root_ca.crt)
#            STEP_PROVISIONER=certflow               (a JWK provisioner)
#            STEP_PASSWORD_FILE=/run/secrets/step-provisioner-password
#            STEP_NOT_AFTER=720h                     (optional, within the provisioner's limits)
# The worker passes only PATH, HOME, locale and temp variables through, so everything step needs is set here.
set -euo pipefail

: "${STEP_PROVISIONER:?set STEP_PROVISIONER in the issuer env}"
: "${STEP_PASSWORD_FILE:?set STEP_PASSWORD_FILE in the issuer env}"

if [[ "${CERTFLOW_ACTION:-submit}" == "poll" ]]; then
  echo "step-ca signs immediately; there is no pending request to poll" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/request.csr"

# exit 69 (EX_UNAVAILABLE) when the CA cannot be reached: Certflow retries later instead of giving up
if ! step ca health >"$work/health.log" 2>&1; then
  echo "step-ca is not reachable: $(tail -n 3 "$work/health.log")" >&2
  exit 69
fi

# any refusal (policy, unknown provisioner, bad password) ends the attempt with step's own message on stderr
step ca sign "$work/request.csr" "$work/chain.pem" \
  --provisioner "$STEP_PROVISIONER" \
  --provisioner-password-file "$STEP_PASSWORD_FILE" \
  ${STEP_NOT_AFTER:+--not-after "$STEP_NOT_AFTER"} \
  --force >&2

# step writes the leaf followed by the intermediate: exactly what Certflow expects on stdout
cat "$work/chain.pem"
