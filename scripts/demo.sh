#!/usr/bin/env bash
# The main job, end to end: provision if needed, build dcx, bring up a dev container and run
# commands in it with `dcx exec`. Everything it starts is removed at the end.
#   scripts/demo.sh                   the demo dev container from fixtures/workspaces/demo,
#                                     brought up with the reference `devcontainer up` (Docker)
#   scripts/demo.sh --runtime crun    a container run directly by crun: no Docker daemon involved
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
runtime=docker
case "${1:-}" in
  "") ;;
  --runtime) runtime=${2:?--runtime needs docker or crun} ;;
  --runtime=*) runtime=${1#--runtime=} ;;
  *) echo "usage: scripts/demo.sh [--runtime docker|crun]" >&2; exit 2 ;;
esac
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${DCX_CACHE:-/var/cache/dcx}/env"
cargo build --release --locked --quiet
dcx=${CARGO_TARGET_DIR:-$root/target}/release/dcx

run() {
  printf '\n$ dcx %s\n' "$*"
  "$dcx" "$@"
  printf '(exit %s)\n' "$?"
}

if [ "$runtime" = crun ]; then
  crun_root=$(mktemp -d)/crun
  id=dcx-demo
  trap 'crun --root "$crun_root" delete -f "$id" >/dev/null 2>&1; rm -rf "$(dirname "$crun_root")"' EXIT
  echo "==> crun run $id (busybox root filesystem, annotated as a dev container for vscode)"
  bash fixtures/crun/run.sh "$crun_root" "$id" "$DCX_TEST_ROOTFS/busybox" \
    'devcontainer.metadata=[{"remoteUser":"vscode","remoteEnv":{"DEMO_GREETING":"hello from crun"}}]'
  export DOCKER_HOST=unix:///nonexistent/no-docker-needed.sock
  c=(exec --runtime crun --crun-root "$crun_root" --container-id "$id")
  set +e
  run "${c[@]}" sh -c 'echo "$(id -un) in $(pwd) on $(hostname): $DEMO_GREETING"'
  run "${c[@]}" --user root --remote-env DEMO_GREETING=overridden sh -c 'echo "$(id -un): $DEMO_GREETING"'
  run "${c[@]}" sh -c 'exit 7'
  printf 'bytes through stdin\n' | run "${c[@]}" tr a-z A-Z
  run "${c[@]}" --timeout 1s sleep 30
  run "${c[@]}" --log-format json echo json
  set -e
  exit 0
fi

workspace=$root/fixtures/workspaces/demo
echo "==> devcontainer up --workspace-folder fixtures/workspaces/demo"
id=$("$DCX_REFERENCE_CLI" up --workspace-folder "$workspace" --log-level info 2>/dev/null |
  sed -n 's/.*"containerId":"\([0-9a-f]*\)".*/\1/p')
[ -n "$id" ] || { echo "demo: devcontainer up did not report a container" >&2; exit 1; }
trap 'docker rm -f "$id" >/dev/null' EXIT

ws=fixtures/workspaces/demo
set +e
run exec --workspace-folder "$ws" sh -c 'echo "hello from $(hostname), $(. /etc/os-release; echo "$PRETTY_NAME")"'
run exec --workspace-folder "$ws" sh -c 'echo "$(id -un) in $(pwd): $DEMO_GREETING"'
run exec --workspace-folder "$ws" --user root --remote-env DEMO_GREETING=overridden sh -c 'echo "$(id -un): $DEMO_GREETING"'
run exec --container-id "$id" sh -c 'exit 7'
printf 'bytes through stdin\n' | run exec --workspace-folder "$ws" tr a-z A-Z
run exec --workspace-folder "$ws" --timeout 1s sleep 30
run exec --workspace-folder "$ws" --dry-run printenv DEMO_GREETING
set -e
