#!/usr/bin/env bash
# Starts or stops a project-owned PostgreSQL cluster from the machine's PostgreSQL binaries
# (installed from Debian's packages when missing).
#   scripts/postgres.sh start <data-dir> <port>   # initdb on first use; database and user "cotrain"
#   scripts/postgres.sh stop  <data-dir>
#   scripts/postgres.sh status <data-dir>
# PostgreSQL refuses to run as root, so under root the cluster runs as the "postgres" system user.
set -euo pipefail

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
  return 1
}

ensure_binaries() {
  pg_bin >/dev/null && return
  echo "PostgreSQL binaries not found; installing Debian's postgresql package" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
  pg_bin >/dev/null
}

# Runs a PostgreSQL program as the cluster's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# True when postmaster.pid names a zombie: a postmaster that died (say, SIGKILL) and that its parent
# has not reaped; pg_ctl leaves it to PID 1, which in a container may never reap. kill -0 succeeds on
# a zombie, so pg_ctl status and PostgreSQL's own lock-file check would both take it for a running
# server, and the cluster could not start again.
zombie_postmaster() {
  local pid stat
  pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null) && [ -n "$pid" ] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat:0:1}" = Z ]
}

cmd=${1:?usage: postgres.sh start|stop|status DATA_DIR [PORT]}
data=${2:?data directory required}
mkdir -p "$data"
data=$(cd "$data" && pwd)

case "$cmd" in
  start)
    port=${3:?port required}
    ensure_binaries
    bin=$(pg_bin)
    if [ "$(id -u)" -eq 0 ]; then
      id postgres >/dev/null 2>&1 || useradd --system postgres
      chown postgres "$data"
      chmod 700 "$data"
      runuser -u postgres -- test -x "$data" ||
        { echo "postgres.sh: the postgres user cannot reach $data (a parent directory is private); choose another storage root (COTRAIN_STORAGE_ROOT)" >&2; exit 1; }
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
      pw=$(mktemp); echo cotrain > "$pw"; chmod 644 "$pw"
      as_owner "$bin/initdb" -D "$data" -U cotrain --pwfile="$pw" --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
      rm -f "$pw"
    fi
    if zombie_postmaster; then
      echo "postgres.sh: the postmaster in $data/postmaster.pid is a zombie; removing its lock files" >&2
      rm -f "$data/postmaster.pid" "$data"/.s.PGSQL.*.lock
    fi
    if as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
      exit 0
    fi
    as_owner "$bin/pg_ctl" -D "$data" -w -t 60 -l "$data/server.log" \
      -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='$data'" start >/dev/null
    if ! PGPASSWORD=cotrain "$bin/psql" -h 127.0.0.1 -p "$port" -U cotrain -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'cotrain'" | grep -q 1; then
      PGPASSWORD=cotrain "$bin/psql" -h 127.0.0.1 -p "$port" -U cotrain -d postgres -qc "CREATE DATABASE cotrain"
    fi
    ;;
  stop)
    if zombie_postmaster; then # nothing to stop; pg_ctl would wait for it in vain
      rm -f "$data/postmaster.pid" "$data"/.s.PGSQL.*.lock
    elif [ -f "$data/PG_VERSION" ] && bin=$(pg_bin); then
      as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
  status)
    bin=$(pg_bin) && [ -f "$data/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 &&
      ! zombie_postmaster
    ;;
  *)
    echo "unknown command: $cmd" >&2; exit 64 ;;
esac
