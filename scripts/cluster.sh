#!/usr/bin/env bash
# The Cotrain cluster under Docker on this machine (./cotrain cluster ...):
#   build        the images, from the package registries only: a Debian base made with debootstrap,
#                PostgreSQL and Java from Debian, the Temporal server and UI from the Go module
#                proxy, torch from PyPI, the jars from the Maven build (./cotrain setup)
#   up           build, then start PostgreSQL, Temporal, its UI, the API and two worker hosts with
#                docker-compose.yml + docker-compose.loopback.yml (host network, 127.0.0.1 only)
#   down [-v]    stop and remove the containers (-v: and the volumes: every session, every model)
#   test         a fresh cluster, tests/cluster against it, then down -v
#   compose ...  any docker compose command on the cluster's files
# Installs what is missing (Debian's docker.io and debootstrap; Docker Compose built from the Go
# module proxy when the machine has no Compose 2.24+) and starts dockerd if none runs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$ROOT/var/cluster
PREFIX=${COTRAIN_IMAGE_PREFIX:-cotrain}
TAG=${COTRAIN_IMAGE_TAG:-latest}
BASE=$PREFIX/base:bookworm
MIRROR=${COTRAIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
COMPOSE_VERSION=v2.40.3
GO_TOOLCHAIN=go1.26.10
API_PORT=${COTRAIN_CLUSTER_API_PORT:-18080}
SERVICES=(postgresql temporal temporal-ui api worker-a worker-b)

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() { # package...
  say "installing Debian's $*"
  sudo_ apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq "$@" >&2
}

# A Docker engine: Debian's docker.io, and dockerd started in the background when none answers.
ensure_engine() {
  command -v dockerd >/dev/null || apt_install docker.io
  docker info >/dev/null 2>&1 && return
  mkdir -p "$WORK"
  say "starting dockerd (log: var/cluster/dockerd.log)"
  sudo_ sh -c "nohup dockerd >'$WORK/dockerd.log' 2>&1 &"
  local i
  for i in $(seq 60); do
    docker info >/dev/null 2>&1 && return
    sleep 1
  done
  die "dockerd did not answer within 60 s; see var/cluster/dockerd.log"
}

# BUILD: a docker build with BuildKit (cache and secret mounts). With buildx, `docker build`;
# without it, the engine's own CLI from docker.io (20.10 carries BuildKit) with DOCKER_BUILDKIT=1.
BUILD=()
ensure_builder() {
  if docker buildx version >/dev/null 2>&1; then
    BUILD=(docker build)
  elif [ -x /usr/bin/docker ] && /usr/bin/docker version --format '{{.Client.Version}}' | grep -q '^20\.'; then
    BUILD=(env DOCKER_BUILDKIT=1 /usr/bin/docker build)
  else
    die "no docker CLI with BuildKit: install docker-buildx, or Debian's docker.io (/usr/bin/docker)"
  fi
}

# COMPOSE: Docker Compose 2.24 or later (the loopback file uses !reset). When the machine has
# none, one is built from its module on the Go proxy (go build in the module's own tree: its
# go.mod has exclude directives, which `go install module@version` refuses).
COMPOSE=()
compose_ok() { # command...
  local v
  v=$("$@" version --short 2>/dev/null) || return 1
  v=${v#v}
  [ "${v%%.*}" -gt 2 ] || { [ "${v%%.*}" -eq 2 ] && [ "$(echo "$v" | cut -d. -f2)" -ge 24 ]; }
}
ensure_compose() {
  if compose_ok docker compose; then
    COMPOSE=(docker compose)
  elif ! compose_ok "$WORK/bin/docker-compose"; then
    command -v go >/dev/null || die "Docker Compose 2.24+ is missing, and Go to build it"
    say "building Docker Compose $COMPOSE_VERSION from the Go module proxy (a few minutes, once)"
    local dir src=$WORK/compose-src
    dir=$(GOTOOLCHAIN=$GO_TOOLCHAIN GOFLAGS=-mod=mod go mod download -json \
      "github.com/docker/compose/v2@$COMPOSE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -d "$dir" ] || die "could not download github.com/docker/compose/v2@$COMPOSE_VERSION"
    rm -rf "$src" && cp -r "$dir" "$src" && chmod -R u+w "$src"
    mkdir -p "$WORK/bin"
    (cd "$src" && GOTOOLCHAIN=$GO_TOOLCHAIN go build -trimpath \
      -ldflags "-X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
      -o "$WORK/bin/docker-compose" ./cmd)
    rm -rf "$src"
  fi
  [ ${#COMPOSE[@]} -gt 0 ] || COMPOSE=("$WORK/bin/docker-compose")
  COMPOSE+=(--project-directory "$ROOT" -f "$ROOT/docker-compose.yml" -f "$ROOT/docker-compose.loopback.yml")
}

# The base image: Debian bookworm (minbase) made with debootstrap and imported; made once.
build_base() {
  docker image inspect "$BASE" >/dev/null 2>&1 && return
  command -v debootstrap >/dev/null || apt_install debootstrap
  local rootfs=$WORK/rootfs
  say "making $BASE with debootstrap from $MIRROR"
  sudo_ rm -rf "$rootfs"
  sudo_ debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$MIRROR" >&2
  sudo_ rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  sudo_ tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  sudo_ rm -rf "$rootfs"
}

build_image() { # name dockerfile [target]
  local name=$1 file=$2 target=${3:-}
  say "building $PREFIX/$name:$TAG"
  "${BUILD[@]}" --network host --secret "id=ca,src=$CA" --build-arg "BASE=$BASE" \
    ${target:+--target "$target"} -f "$ROOT/docker/$file" -t "$PREFIX/$name:$TAG" "$ROOT" \
    >"$WORK/build-$name.log" 2>&1 || { tail -n 30 "$WORK/build-$name.log" >&2; die "building $name failed (log: var/cluster/build-$name.log)"; }
}

cmd_build() {
  ensure_engine
  ensure_builder
  mkdir -p "$WORK"
  "$ROOT/cotrain" setup
  build_base
  build_image postgresql Dockerfile.postgresql
  build_image temporal Dockerfile.temporal server
  build_image temporal-ui Dockerfile.temporal ui
  build_image api Dockerfile.api
  build_image worker Dockerfile.worker
}

admin_token() { "${COMPOSE[@]}" exec -T api cat /var/lib/cotrain/storage/admin-token; }

# Healthy containers, then both worker hosts registered and alive at the API.
wait_ready() {
  "${COMPOSE[@]}" up -d --wait --wait-timeout 300 "${SERVICES[@]}" >&2
  local token i
  token=$(admin_token)
  for i in $(seq 120); do
    if curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$API_PORT/api/workers" |
      python3 -c 'import json, sys
hosts = {h["id"]: h for h in json.load(sys.stdin)["workers"]}
sys.exit(not all(hosts.get(h, {}).get("alive") for h in ("loopback-a", "loopback-b")))' 2>/dev/null; then
      return
    fi
    sleep 1
  done
  die "the worker hosts loopback-a and loopback-b did not register within 120 s"
}

cmd_up() {
  cmd_build
  ensure_compose
  say "starting the cluster"
  wait_ready
  say "up: API http://127.0.0.1:$API_PORT, Temporal UI http://127.0.0.1:${COTRAIN_CLUSTER_UI_PORT:-18233}," \
    "Temporal 127.0.0.1:${COTRAIN_CLUSTER_TEMPORAL_PORT:-17233}; admin token: ./cotrain cluster compose exec api cat /var/lib/cotrain/storage/admin-token"
}

cmd_down() {
  ensure_engine
  ensure_compose
  "${COMPOSE[@]}" --profile gpu down --remove-orphans "$@"
}

cmd_test() {
  cmd_build
  ensure_compose
  "${COMPOSE[@]}" --profile gpu down --remove-orphans --volumes >&2
  trap 'mkdir -p "$WORK"; "${COMPOSE[@]}" logs --no-color --timestamps >"$WORK/test-containers.log" 2>&1; "${COMPOSE[@]}" --profile gpu down --remove-orphans --volumes >&2' EXIT
  say "starting a fresh cluster"
  wait_ready
  say "== Cluster tests (tests/cluster)"
  COTRAIN_CLUSTER_TOKEN=$(admin_token) COTRAIN_CLUSTER_API="http://127.0.0.1:$API_PORT" \
    "$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider "$ROOT/tests/cluster"
}

case "${1:-}" in
  build) cmd_build ;;
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  test) cmd_test ;;
  compose) shift; ensure_compose; "${COMPOSE[@]}" "$@" ;;
  *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 64 ;;
esac
