#!/usr/bin/env bash
# Idempotent provisioning for dcx's demo, tests and benchmarks on a Debian 12 machine, as root,
# with no image registry:
#   1. apt packages (docker.io, crun, busybox-static, debootstrap, tmux, time, curl, socat,
#      man-db and zsh for the completion and man page tests);
#   2. a Docker daemon on the default unix socket and on tcp://127.0.0.1:2375 (loopback only),
#      started only when none answers;
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
#      in-container helper build.rs builds (rustup; skipped, with a note, where that fails).
# Everything it builds lives in $DCX_CACHE (default /var/cache/dcx); a second run takes seconds.
# It writes $DCX_CACHE/env, which scripts/test.sh and scripts/bench.sh source: it names the
# reference CLI (DCX_REFERENCE_CLI) for the test harness.
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
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. The Docker daemon.
ping() { curl -sf --max-time 2 --unix-socket "$socket" http://localhost/_ping >/dev/null 2>&1; }
if ! ping; then
  log=${DCX_DOCKERD_LOG:-/var/log/dcx-dockerd.log}
  say "starting dockerd (log: $log)"
  # setsid: the daemon must outlive this script and the shell that ran it.
  setsid dockerd -H "unix://$socket" -H tcp://127.0.0.1:2375 >"$log" 2>&1 < /dev/null &
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

# 3. Test images: the rootfs tarball is cached, so a lost image is re-imported in seconds. The
#    same root filesystems are unpacked for the crun backend's test bundles.
tarball() { # NAME RECIPE
  if [ ! -s "$cache/$1" ]; then
    say "building $1 (recipe: ${2#"$root"/})"
    bash "$2" "$cache/$1"
  fi
}
image() { # TAG TARBALL RECIPE
  if docker image inspect "$1" >/dev/null 2>&1; then return; fi
  tarball "$2" "$3"
  say "importing $1"
  docker import -c 'CMD ["/bin/sh"]' "$cache/$2" "$1" >/dev/null
}
rootfs() { # NAME TARBALL RECIPE
  local dir=$cache/rootfs/$1
  if [ -f "$dir/.complete" ]; then return; fi
  tarball "$2" "$3"
  say "unpacking $2 for crun bundles"
  rm -rf "$dir" && mkdir -p "$dir"
  tar --numeric-owner -C "$dir" -xf "$cache/$2"
  touch "$dir/.complete"
}
debian_recipe=$root/fixtures/images/debian/build.sh
busybox_recipe=$root/fixtures/images/busybox/build.sh
image dcx-test/debian:bookworm debian-bookworm.tar "$debian_recipe"
image dcx-test/busybox busybox.tar "$busybox_recipe"
rootfs debian debian-bookworm.tar "$debian_recipe"
rootfs busybox busybox.tar "$busybox_recipe"

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

cat >"$cache/env" <<ENV
export DCX_REFERENCE_CLI=$cli
export DCX_TEST_ROOTFS=$cache/rootfs
export DCX_UNPRIVILEGED_USER=$tester
ENV

# 6. The other endpoints (appends to $cache/env).
DCX_CACHE=$cache bash "$root/scripts/endpoints.sh"
say "ready (reference CLI: $cli)"
