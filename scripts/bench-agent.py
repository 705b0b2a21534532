#!/usr/bin/env python3
"""The agent service side by side with the commands it replaces, in interleaved rounds.

Usage: bench-agent.py SOCKET DOCKER_CONTAINER CRUN_ROOT CRUN_CONTAINER DCX SERVER_PID ROUNDS
Prints one line per comparison: warm `exec.run` of `true` on a Docker session (through the
in-container helper, and by plain engine exec) against `docker exec C true` and `dcx exec
--container-id C true`; a session's first command (placing and starting the helper); on a crun
session against bare `crun exec`; the helper's memory; then 32 concurrent sessions'
throughput, `system.ping` p99 under that load, and the server's memory.
"""
import os
import random
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_client import Agent  # noqa: E402

sock, container, crun_root, crun_id, dcx, server_pid, rounds = sys.argv[1:8]
rounds = int(rounds)


def timed(fn):
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def process(argv):
    def run():
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        assert result.returncode == 0, argv
    return run


def agent_run(agent, session):
    def run():
        data = agent.call("exec.run", session_id=session, argv=["true"])
        assert data["exit_code"] == 0, data
    return run


def interleaved(n, commands):
    for run in commands.values():
        for _ in range(3):
            run()
    times = {name: [] for name in commands}
    for _ in range(n):
        names = list(commands)
        random.shuffle(names)
        for name in names:
            times[name].append(timed(commands[name]))
    return {name: (statistics.mean(t), statistics.median(t)) for name, t in times.items()}


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


agent = Agent(sock)


def create(**params):
    data = agent.call("session.create", **params)
    return data["session_id"], data["transport"]


# The first command of a session: placing and starting the helper, then the command.
started = time.perf_counter()
docker_session, transport = create(container_id=container)
agent_run(agent, docker_session)()
first = time.perf_counter() - started
assert transport == "helper", transport
plain_session, _ = create(container_id=container, helper=False)
crun_session, crun_transport = create(container_id=crun_id, runtime="crun", crun_root=crun_root)
crun_plain, _ = create(container_id=crun_id, runtime="crun", crun_root=crun_root, helper=False)

r = interleaved(rounds, {
    "agent": agent_run(agent, docker_session),
    "plain": agent_run(agent, plain_session),
    "docker": process(["docker", "exec", container, "true"]),
    "dcx": process([dcx, "exec", "--container-id", container, "true"]),
})
print(f"docker ({rounds} rounds): exec.run through the helper {ms(r['agent'][0])} "
      f"(median {ms(r['agent'][1])}), by plain engine exec {ms(r['plain'][0])} "
      f"(median {ms(r['plain'][1])}), docker exec {ms(r['docker'][0])} "
      f"(median {ms(r['docker'][1])}), dcx exec {ms(r['dcx'][0])} (median {ms(r['dcx'][1])})")
print(f"  helper exec.run / docker exec = {r['agent'][0] / r['docker'][0]:.3f}x "
      f"(median {r['agent'][1] / r['docker'][1]:.3f}x; goal p50 <= 5 ms and <= 0.1x); "
      f"plain exec.run / docker exec = {r['plain'][1] / r['docker'][1]:.2f}x (median)")
r_docker_helper = r['agent'][1]
print(f"  first command of a session (create, place and start the helper, run): {ms(first)}, "
      f"{ms(first - r['agent'][1])} more than a warm one (goal <= 250 ms)")

r = interleaved(rounds * 10, {
    "agent": agent_run(agent, crun_session),
    "plain": agent_run(agent, crun_plain),
    "crun": process(["crun", "--root", crun_root, "exec", crun_id, "true"]),
})
print(f"crun ({rounds * 10} rounds, {crun_transport}): exec.run {ms(r['agent'][0])} "
      f"(median {ms(r['agent'][1])}), plain {ms(r['plain'][0])} (median {ms(r['plain'][1])}), "
      f"crun exec {ms(r['crun'][0])} (median {ms(r['crun'][1])})")
print(f"  helper exec.run / crun exec = {r['agent'][0] / r['crun'][0]:.2f}x "
      f"(median {r['agent'][1] / r['crun'][1]:.2f}x; goal <= 0.5)")

# The next command after one that left a background child writing (`cmd &`).
agent.call("exec.run", session_id=docker_session,
           command="(while :; do echo tick; sleep 0.05; done) & echo started")
after = interleaved(rounds, {"after": agent_run(agent, docker_session)})["after"]
print(f"  after `cmd &` with a writing child: exec.run {ms(after[0])} (median {ms(after[1])}), "
      f"{after[1] / r_docker_helper:.2f}x a warm one (goal <= 1.2x)")

# A small file written through the helper, beside a command.
def fs_write(session):
    def run():
        agent.call("fs.write", session_id=session, path="/tmp/bench-12", data="hello world\n")
    return run


w = interleaved(rounds, {"write": fs_write(docker_session), "run": agent_run(agent, docker_session)})
print(f"  fs.write of 12 B: {ms(w['write'][0])} (median {ms(w['write'][1])}), exec.run "
      f"{ms(w['run'][1])} (median); fs.write / exec.run = {w['write'][1] / w['run'][1]:.2f}x "
      f"(goal <= 1.0)")

# The helper's memory, read in the container.
rss = subprocess.run(
    ["docker", "exec", container, "sh", "-c",
     "for p in /proc/[0-9]*; do case $(readlink $p/exe) in /.dcx-helper-*) "
     "grep VmRSS $p/status;; esac; done"],
    capture_output=True, text=True).stdout.split()
print(f"helper memory: {' '.join(rss) or 'not found'} (goal <= 2 MiB)")

# Throughput: 32 sessions, each with a connection of its own running commands back to back,
# while one more connection pings.
SESSIONS, SECONDS = 32, 10
sessions = [agent.call("session.create", container_id=container)["session_id"]
            for _ in range(SESSIONS)]
done = [0] * SESSIONS
stop = time.perf_counter() + SECONDS


def worker(index):
    client = Agent(sock)
    while time.perf_counter() < stop:
        data = client.call("exec.run", session_id=sessions[index], argv=["true"])
        assert data["exit_code"] == 0, data
        done[index] += 1


threads = [threading.Thread(target=worker, args=(i,)) for i in range(SESSIONS)]
for thread in threads:
    thread.start()
pinger, pings = Agent(sock), []
while time.perf_counter() < stop:
    pings.append(timed(lambda: pinger.call("system.ping")))
    time.sleep(0.01)
for thread in threads:
    thread.join()
pings.sort()
p99 = pings[int(len(pings) * 0.99) - 1]
print(f"32 concurrent Docker sessions: {sum(done) / SECONDS:.1f} commands/s; "
      f"system.ping p50 {ms(pings[len(pings) // 2])}, p99 {ms(p99)} ({len(pings)} pings)")

status = open(f"/proc/{server_pid}/status").read()
field = {line.split(":")[0]: line.split(":")[1].strip() for line in status.splitlines()}
print(f"server memory: RSS {field['VmRSS']}, peak {field['VmHWM']} (34 sessions)")

# dcx mcp: run_command of `true` per tool call, with the official Python MCP SDK as the host,
# against dcx exec; and the first call's latency (session created, probe cached).
try:
    import asyncio

    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
except ImportError:
    print("dcx mcp: skipped (pip install mcp)")
    sys.exit(0)


async def mcp_bench():
    params = StdioServerParameters(command=dcx, args=["mcp", "--container-id", container,
                                                      "--log-level", "info"])
    started = time.perf_counter()
    async with stdio_client(params, errlog=open(os.devnull, "w")) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await session.call_tool("run_command", {"command": "true"})
            first = time.perf_counter() - started
            times = {"mcp": [], "dcx": []}
            for _ in range(rounds):
                for name in random.sample(["mcp", "dcx"], 2):
                    t = time.perf_counter()
                    if name == "mcp":
                        result = await session.call_tool("run_command", {"command": "true"})
                        assert result.structured_content["exit_code"] == 0, result
                    else:
                        process([dcx, "exec", "--container-id", container, "true"])()
                    times[name].append(time.perf_counter() - t)
    return first, {name: statistics.mean(t) for name, t in times.items()}


first, r = asyncio.run(mcp_bench())
print(f"dcx mcp ({rounds} rounds): run_command {ms(r['mcp'])}, dcx exec {ms(r['dcx'])}; "
      f"run_command / dcx exec = {r['mcp'] / r['dcx']:.2f}x; "
      f"start to the first answer {ms(first)}")
