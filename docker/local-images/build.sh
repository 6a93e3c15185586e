#!/usr/bin/env bash
# Stand-ins for the official base images, built from Debian packages and PyPI for a machine
# that reaches no container registry (this project's CI). Each is built once and kept: an
# image that already exists is not rebuilt (`--force` rebuilds them all).
#
#   onepipe-local/python:3.11  debootstrap'd Debian bookworm with python3.11 (for PYTHON_IMAGE)
#   onepipe-local/uv:<version> the uv binaries from the uv wheel (for UV_IMAGE)
#   onepipe-local/redis:7      Debian's redis-server, run as the redis user (for REDIS_IMAGE)
#
# They never take the official names, so nothing mistakes them for the real images.
# The Python stand-in trusts what this machine trusts (its extra CA certificates), so
# builds on it reach PyPI through the same TLS-inspecting egress as the host.
set -euo pipefail
cd "$(dirname "$0")/../.."

force=false
[ "${1:-}" = "--force" ] && force=true

uv_version=$(sed -n 's|^ARG UV_IMAGE=ghcr.io/astral-sh/uv:||p' docker/service.Dockerfile)
PYTHON_LOCAL=onepipe-local/python:3.11
UV_LOCAL="onepipe-local/uv:${uv_version}"
REDIS_LOCAL=onepipe-local/redis:7
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

exists() { ! $force && docker image inspect "$1" >/dev/null 2>&1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if exists "$PYTHON_LOCAL"; then
    echo "$PYTHON_LOCAL: present"
else
    command -v debootstrap >/dev/null || { echo "error: debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
    echo "$PYTHON_LOCAL: debootstrap bookworm (about 2 minutes)"
    rootfs="$work/rootfs"
    debootstrap --variant=minbase --include=python3.11,python3-venv,ca-certificates \
        bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    # the machine's own certificate authorities (e.g. an egress proxy's), so builds reach PyPI
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
        chroot "$rootfs" update-ca-certificates >/dev/null
    fi
    # the official image's interpreter paths, which the Dockerfile names (UV_PYTHON)
    for name in python3.11 python3 python; do ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/$name"; done
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["python3"]' \
        - "$PYTHON_LOCAL" >/dev/null
    echo "$PYTHON_LOCAL: built"
fi

if exists "$UV_LOCAL"; then
    echo "$UV_LOCAL: present"
else
    python3 -m pip download --quiet --no-deps --only-binary :all: --platform manylinux_2_17_x86_64 \
        -d "$work/uv" "uv==${uv_version}"
    mkdir -p "$work/uv/image"
    python3 - "$work/uv" <<'PY'
import sys, zipfile, pathlib
folder = pathlib.Path(sys.argv[1])
with zipfile.ZipFile(next(folder.glob("uv-*.whl"))) as wheel:
    for info in wheel.infolist():
        name = pathlib.PurePosixPath(info.filename)
        if name.parent.name == "scripts" and name.name in ("uv", "uvx"):
            target = folder / "image" / name.name
            target.write_bytes(wheel.read(info))
            target.chmod(0o755)
PY
    # like the official image: the two binaries at the root, nothing else
    tar -C "$work/uv/image" -c uv uvx | docker import --change 'CMD ["/uv"]' - "$UV_LOCAL" >/dev/null
    echo "$UV_LOCAL: built"
fi

if exists "$REDIS_LOCAL"; then
    echo "$REDIS_LOCAL: present"
else
    docker build --quiet -t "$REDIS_LOCAL" --build-arg "BASE=$PYTHON_LOCAL" - <docker/local-images/redis.Dockerfile >/dev/null
    echo "$REDIS_LOCAL: built"
fi
