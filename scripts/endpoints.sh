#!/usr/bin/env bash
# The other Docker endpoints dcx's tests reach, each started only when it does not answer
# (called by scripts/setup.sh, which installs the packages; idempotent):
# Their ports are DCX_TLS_PORT (default 23760) and DCX_SSH_PORT (default 22220) when free or
# already serving this setup's listener, else free ones (scripts/ports.sh); a taken port is
# named with its owner.
#   1. a second Docker daemon standing in for a remote host: its own network namespace,
#      data-root, exec-root, socket and pidfile, no bridge, no iptables; the test images loaded
#      into it (its containers run with --network none);
#   2. TLS: a CA, a server certificate for 127.0.0.1 and a client certificate (openssl), a
#      second CA that signed nothing, and a TLS listener (socat, client certificates required)
#      in front of the main daemon's socket;
#   3. ssh: an sshd on 127.0.0.1 with a generated host key and a client key allowed as root,
#      and an `ssh` wrapper that adds the test's ssh_config (put its folder first on PATH);
#   4. podman's Docker-compatible API service on /run/podman/podman.sock (runc: crun 1.8.1
#      refuses this kind of cgroup setup), the busybox test image loaded into it.
# It appends what the tests need to $DCX_ENV_FILE (default $DCX_CACHE/env).
set -euo pipefail

cache=${DCX_CACHE:-/var/cache/dcx}
env_file=${DCX_ENV_FILE:-$cache/env}
say() { printf 'setup: %s\n' "$*" >&2; }
# shellcheck source=scripts/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"
wait_for() { # WHAT COMMAND...
  local what=$1
  shift
  for _ in $(seq 1 60); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  say "$what did not come up within 60 s"
  return 1
}
pinger() { curl -sf --max-time 2 --unix-socket "$1" http://localhost/_ping; }

# 1. The second daemon.
d2=$cache/docker2
d2_socket=/run/dcx-docker2.sock
mkdir -p "$d2"
if ! pinger "$d2_socket" >/dev/null 2>&1; then
  say "starting a second dockerd on $d2_socket (log: $d2/dockerd.log)"
  # In a network namespace of its own: a second dockerd beside the first would otherwise touch
  # the first one's bridge (with --bridge none it deletes docker0). Its socket is a file, so
  # it is reached from here all the same.
  setsid unshare --net dockerd --data-root "$d2/data" --exec-root /run/dcx-docker2 \
    --pidfile /run/dcx-docker2.pid -H "unix://$d2_socket" --bridge none --iptables=false \
    --ip-masq=false >"$d2/dockerd.log" 2>&1 </dev/null &
  wait_for "the second dockerd" pinger "$d2_socket" || { tail -n 20 "$d2/dockerd.log" >&2; exit 1; }
fi
for image in dcx-test/busybox dcx-test/debian:bookworm; do
  if ! DOCKER_HOST=unix://$d2_socket docker image inspect "$image" >/dev/null 2>&1; then
    say "loading $image into the second daemon"
    docker save "$image" | DOCKER_HOST=unix://$d2_socket docker load >/dev/null
  fi
done

# 2. TLS in front of the main daemon.
tls=$cache/tls
if [ ! -s "$tls/key.pem" ]; then
  say "making TLS certificates in $tls"
  rm -rf "$tls" && mkdir -p "$tls/wrong-ca"
  (
    cd "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=dcx-test-ca \
      -keyout ca-key.pem -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server-key.pem -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
      -extfile server.ext -out server-cert.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=dcx-client -keyout key.pem -out client.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
      -extfile client.ext -out cert.pem 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=dcx-wrong-ca \
      -keyout wrong-ca/ca-key.pem -out wrong-ca/ca.pem 2>/dev/null
    cp cert.pem key.pem wrong-ca/
  )
fi
tls_up() { # PORT
  curl -sf --max-time 2 --cacert "$tls/ca.pem" --cert "$tls/cert.pem" --key "$tls/key.pem" \
    "https://127.0.0.1:$1/_ping"
}
tls_port=$(choose_port tls "${DCX_TLS_PORT:-23760}" tls_up)
if ! tls_up "$tls_port" >/dev/null 2>&1; then
  say "starting a TLS listener on 127.0.0.1:$tls_port (socat, client certificates required)"
  # -t: socat's default 0.5 s half-close timeout would cut a stream after stdin's EOF.
  setsid socat -t 86400 \
    "OPENSSL-LISTEN:$tls_port,bind=127.0.0.1,reuseaddr,fork,cert=$tls/server-cert.pem,key=$tls/server-key.pem,cafile=$tls/ca.pem,verify=1" \
    UNIX-CONNECT:/var/run/docker.sock >"$tls/socat.log" 2>&1 </dev/null &
  wait_port TLS "$tls_port" tls_up "$tls/socat.log"
fi

# 3. sshd on loopback.
ssh_dir=$cache/ssh
mkdir -p "$ssh_dir/bin" /run/sshd
[ -s "$ssh_dir/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$ssh_dir/host_key"
[ -s "$ssh_dir/client_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$ssh_dir/client_key"
ssh_on() { # PORT: our key is accepted there
  /usr/bin/ssh -F /dev/null -p "$1" -i "$ssh_dir/client_key" -o IdentitiesOnly=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
    -o LogLevel=ERROR -o ConnectTimeout=3 -l root 127.0.0.1 true
}
ssh_port=$(choose_port ssh "${DCX_SSH_PORT:-22220}" ssh_on)
cat >"$ssh_dir/sshd_config" <<CFG
ListenAddress 127.0.0.1
Port $ssh_port
HostKey $ssh_dir/host_key
AuthorizedKeysFile $ssh_dir/client_key.pub
PermitRootLogin prohibit-password
PasswordAuthentication no
UsePAM no
StrictModes no
PidFile $ssh_dir/sshd.pid
CFG
cat >"$ssh_dir/ssh_config" <<CFG
Host 127.0.0.1
  Port $ssh_port
  IdentityFile $ssh_dir/client_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  BatchMode yes
  LogLevel ERROR
CFG
cat >"$ssh_dir/bin/ssh" <<WRAP
#!/bin/sh
exec /usr/bin/ssh -F $ssh_dir/ssh_config "\$@"
WRAP
chmod +x "$ssh_dir/bin/ssh"
ssh_up() { "$ssh_dir/bin/ssh" -l root 127.0.0.1 true; }
if ! ssh_up >/dev/null 2>&1; then
  say "starting sshd on 127.0.0.1:$ssh_port"
  /usr/sbin/sshd -f "$ssh_dir/sshd_config" -E "$ssh_dir/sshd.log"
  wait_port ssh "$ssh_port" ssh_on "$ssh_dir/sshd.log"
fi

# 4. podman's API service.
podman_socket=/run/podman/podman.sock
podman_conf=$cache/podman-containers.conf
cat >"$podman_conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=16384:16384"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF=$podman_conf
if ! pinger "$podman_socket" >/dev/null 2>&1; then
  say "starting podman's API service on $podman_socket"
  mkdir -p /run/podman
  setsid podman system service --time=0 "unix://$podman_socket" >"$cache/podman.log" 2>&1 </dev/null &
  wait_for "podman's API service" pinger "$podman_socket" || { tail -n 20 "$cache/podman.log" >&2; exit 1; }
fi
if ! podman image exists localhost/dcx-test/busybox; then
  say "loading dcx-test/busybox into podman"
  docker save dcx-test/busybox | podman load >/dev/null 2>&1
fi

cat >>"$env_file" <<ENV
export DCX_DOCKER2_HOST=unix://$d2_socket
export DCX_TLS_DIR=$tls
export DCX_TLS_HOST=tcp://127.0.0.1:$tls_port
export DCX_SSH_PATH=$ssh_dir/bin
export DCX_SSH_HOST=ssh://root@127.0.0.1
export DCX_PODMAN_SOCKET=$podman_socket
export CONTAINERS_CONF=$podman_conf
ENV
