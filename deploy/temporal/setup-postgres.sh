#!/bin/sh
# One-shot (temporalio/admin-tools): create Temporal's two PostgreSQL databases and bring their schemas to the
# version this admin-tools image ships. Safe to run again: existing databases are kept, and update-schema only
# applies versions newer than the recorded one, which is how a Temporal upgrade migrates (see docs/operations.md).
# The password comes from SQL_PASSWORD in the environment, never from the command line.
set -eu
: "${POSTGRES_SEEDS:?}" "${DB_PORT:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

echo "waiting for PostgreSQL at ${POSTGRES_SEEDS}:${DB_PORT}"
until nc -z -w 5 "$POSTGRES_SEEDS" "$DB_PORT"; do sleep 1; done

sql() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}
for db in temporal:temporal temporal_visibility:visibility; do
  name=${db%%:*}
  dir=${db##*:}
  echo "schema of database ${name}"
  sql --db "$name" create || echo "database ${name} exists"
  sql --db "$name" setup-schema -v 0.0
  sql --db "$name" update-schema -d "${SCHEMA_DIR}/${dir}/versioned"
done
echo "Temporal schema ready"
