#!/usr/bin/env bash
# Runs every test: provisions the machine if needed (scripts/setup.sh), then the packaging
# checks (the declared rust-version against the lock, `cargo deny` on licences, bans and
# sources, offline), the format and lint gates and `cargo test`, unit tests and the
# integration tests against the real daemon.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${DCX_CACHE:-/var/cache/dcx}/env"
bash scripts/check-msrv.sh
"$DCX_CARGO_DENY" --log-level error --offline check licenses bans sources
cargo fmt --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked "$@"
