"""Bounds of `dcx serve` under a long, mixed load and under idle connections (issue 25's rows):

* 1,000 idle HTTP connections held open (the server serves 256 a transport: the rest are
  refused at once), and `system.ping` on the unix socket meanwhile: p50, p99, max;
* a soak: for SOAK seconds, sessions created and destroyed, foreground and background commands,
  output of every size, reads, file writes and reads; the server's RSS at the start and the end
  (goal: growth <= 32 MiB).

Usage: bench-agent-bounds.py SOCKET HTTP_PORT TOKEN CONTAINER SERVER_PID SOAK_SECONDS
"""
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_client import Agent  # noqa: E402

sock, port, token, container, server_pid, soak = sys.argv[1:7]
port, soak = int(port), float(soak)


def rss_kib():
    status = open(f"/proc/{server_pid}/status").read()
    field = {line.split(":")[0]: line.split(":")[1].strip() for line in status.splitlines()}
    return int(field["VmRSS"].split()[0]), int(field["VmHWM"].split()[0])


def pings(agent, n):
    times = []
    for _ in range(n):
        started = time.perf_counter()
        agent.call("system.ping")
        times.append(time.perf_counter() - started)
        time.sleep(0.005)
    times.sort()
    return times


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


agent = Agent(sock)

# 1,000 idle HTTP connections (a request line never sent), then pings on the unix socket.
idle = []
for _ in range(1000):
    conn = socket.create_connection(("127.0.0.1", port))
    idle.append(conn)
time.sleep(0.5)
times = pings(agent, 400)
print(f"1000 idle HTTP connections open: unix system.ping p50 {ms(times[len(times) // 2])}, "
      f"p99 {ms(times[int(len(times) * 0.99) - 1])}, max {ms(times[-1])} ({len(times)} pings); "
      f"server descriptors {len(os.listdir(f'/proc/{server_pid}/fd'))}")
for conn in idle:
    conn.close()

# The soak.
start_rss, _ = rss_kib()
calls = 0
stop = time.perf_counter() + soak
session = agent.call("session.create", container_id=container)["session_id"]
while time.perf_counter() < stop:
    kind = random.choice(["run", "big", "start", "file", "session"])
    if kind == "run":
        agent.call("exec.run", session_id=session, command="echo hi; cd /tmp; export A=$RANDOM")
    elif kind == "big":
        size = random.choice([1_000, 100_000, 3_000_000])
        data = agent.call("exec.run", session_id=session, command=f"head -c {size} /dev/zero")
        assert data["stdout_bytes"] == size, data
    elif kind == "start":
        started = agent.call("exec.start", session_id=session, command="seq 1 20000; sleep 0.2")
        agent.call("exec.read", exec_id=started["exec_id"], wait_ms=2000)
        agent.call("exec.cancel", exec_id=started["exec_id"], signal="KILL")
    elif kind == "file":
        agent.call("fs.write", session_id=session, path="/tmp/soak.txt", data="x" * 50_000)
        agent.call("fs.read", session_id=session, path="/tmp/soak.txt")
    else:
        agent.call("session.destroy", session_id=session)
        session = agent.call("session.create", container_id=container)["session_id"]
    calls += 1
end_rss, peak = rss_kib()
print(f"soak of {soak:.0f} s: {calls} calls; server RSS {start_rss / 1024:.1f} MiB at the start, "
      f"{end_rss / 1024:.1f} MiB at the end (growth {(end_rss - start_rss) / 1024:.1f} MiB, "
      f"goal <= 32), peak {peak / 1024:.1f} MiB")
