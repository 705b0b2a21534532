# Sourced by scripts/setup.sh and scripts/endpoints.sh: choosing the loopback ports of the test
# listeners so that setup works beside whatever already runs on the machine.
#
# `choose_port NAME PREFERRED CHECK`: prints the port for the listener NAME. CHECK PORT succeeds
# when that port already serves what the tests need (a listener this setup started before, or
# an equivalent one): then it is used as it is. Else the preferred port when it is free, else a
# free port the kernel picks. A taken port is named with its owner. The choice is remembered in
# $cache/ports/NAME, so the next run finds its own listener first.

# The process listening on 127.0.0.1:PORT (or any address), as `name (pid N)`, from ss.
port_owner() {
  local line
  line=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1)
  [ -n "$line" ] || return 1
  local who
  who=$(printf '%s\n' "$line" | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p')
  printf '%s\n' "${who:-an unknown process}"
}

# A port nothing listens on now, picked by the kernel.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

choose_port() { # NAME PREFERRED CHECK
  local name=$1 preferred=$2 check=$3 remembered="" owner
  mkdir -p "$cache/ports"
  [ -s "$cache/ports/$name" ] && remembered=$(cat "$cache/ports/$name")
  for port in $remembered $preferred; do
    if "$check" "$port" >/dev/null 2>&1; then
      printf '%s\n' "$port" >"$cache/ports/$name"
      printf '%s\n' "$port"
      return
    fi
  done
  if owner=$(port_owner "$preferred"); then
    port=$(free_port)
    say "127.0.0.1:$preferred is taken by $owner and does not serve the $name endpoint: using port $port"
  else
    port=$preferred
  fi
  printf '%s\n' "$port" >"$cache/ports/$name"
  printf '%s\n' "$port"
}

# Waits until PORT serves (CHECK PORT), else says who holds it and what the log says.
wait_port() { # NAME PORT CHECK LOG
  local name=$1 port=$2 check=$3 log=$4 owner
  for _ in $(seq 1 60); do
    "$check" "$port" >/dev/null 2>&1 && return 0
    sleep 1
  done
  if owner=$(port_owner "$port"); then
    say "the $name listener did not come up on 127.0.0.1:$port within 60 s; the port is held by $owner"
  else
    say "the $name listener did not come up on 127.0.0.1:$port within 60 s"
  fi
  [ -f "$log" ] && { say "its log ($log) ends with:"; tail -n 20 "$log" >&2; }
  return 1
}
