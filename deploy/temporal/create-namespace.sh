#!/bin/sh
# One-shot (temporalio/admin-tools): wait until the Temporal frontend serves, then make sure Certflow's namespace
# exists. The worker registers its own search attributes at start.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:?}" "${RETENTION:?}"

tries=0
# the frontend answers SERVING once its services are up (NOT_SERVING while they start)
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" 2>/dev/null | grep -qx SERVING; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "Temporal at ${TEMPORAL_ADDRESS} is not serving after 120 s" >&2
    exit 1
  fi
  sleep 2
done

if temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; then
  echo "namespace ${NAMESPACE} exists"
else
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" --retention "$RETENTION"
  echo "namespace ${NAMESPACE} created (retention ${RETENTION})"
fi
