#!/bin/sh
# Entry point of the cotrain/temporal image: creates Temporal's two databases on PostgreSQL and
# brings their schemas to this release with the server's own SQL tool (no-ops when already done),
# starts the server from the release's config template, and registers the namespace if missing.
set -eu

: "${POSTGRES_SEEDS:?POSTGRES_SEEDS (the PostgreSQL host) must be set}"
: "${POSTGRES_USER:?POSTGRES_USER must be set}"
: "${POSTGRES_PWD:?POSTGRES_PWD must be set}"
# The release's template reads the visibility store's port from VISIBILITY_DB_PORT or POSTGRES_PORT.
export VISIBILITY_DB_PORT="${VISIBILITY_DB_PORT:-$DB_PORT}"

sql() { # database, command...
  db=$1
  shift
  temporal-sql-tool --plugin "$DB" --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" \
    --pw "$POSTGRES_PWD" --db "$db" "$@"
}

# create-database fails until PostgreSQL accepts connections, and says so once the database exists.
for db in temporal temporal_visibility; do
  until out=$(sql "$db" create-database 2>&1) || echo "$out" | grep -q "already exists"; do
    echo "temporal-entrypoint: waiting for PostgreSQL at $POSTGRES_SEEDS:$DB_PORT ($(echo "$out" | tail -n1))" >&2
    sleep 2
  done
done
sql temporal setup-schema -v 0.0
sql temporal update-schema --schema-name postgresql/v12/temporal
sql temporal_visibility setup-schema -v 0.0
sql temporal_visibility update-schema --schema-name postgresql/v12/visibility

temporal-server --root /etc/temporal --config config --env docker --allow-no-auth start &
server=$!
trap 'kill -TERM "$server" 2>/dev/null' TERM INT

# The namespace, through the frontend's HTTP API (the image has no Temporal CLI); its retention
# as a protobuf Duration, in seconds.
case "$DEFAULT_NAMESPACE_RETENTION" in
  *d) retention=$((${DEFAULT_NAMESPACE_RETENTION%d} * 86400)) ;;
  *h) retention=$((${DEFAULT_NAMESPACE_RETENTION%h} * 3600)) ;;
  *s) retention=${DEFAULT_NAMESPACE_RETENTION%s} ;;
  *) echo "temporal-entrypoint: DEFAULT_NAMESPACE_RETENTION must end in d, h or s" >&2; exit 2 ;;
esac
url="http://127.0.0.1:$FRONTEND_HTTP_PORT/api/v1"
while kill -0 "$server" 2>/dev/null; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$url/namespaces/$DEFAULT_NAMESPACE" || true)
  if [ "$code" = 200 ]; then
    break
  elif [ "$code" = 404 ]; then
    curl -fsS -o /dev/null -X POST "$url/namespaces" -H 'Content-Type: application/json' \
      -d "{\"namespace\": \"$DEFAULT_NAMESPACE\", \"workflowExecutionRetentionPeriod\": \"${retention}s\"}" &&
      echo "temporal-entrypoint: registered namespace $DEFAULT_NAMESPACE" >&2
  fi
  sleep 1
done
# wait returns early when a trapped signal arrives; wait again for the server to finish.
wait "$server" || true
wait "$server"
