#!/usr/bin/env python3
"""Times commands in interleaved rounds and writes the results as JSON.

Each round runs every command once, in a fresh random order, so that a change in the machine's
speed during the run (another process, a daemon waking up) weighs on every command alike; run
one after the other (as hyperfine does), a ratio of a few percent can come from the order alone.
Commands get /dev/null as stdin and stdout and a pipe as stderr (shown if one fails): no
terminal and no file, as in a CI job that captures output. A command that exits non-zero stops
the benchmark.

Usage: bench-interleaved.py RUNS OUT.json NAME=COMMAND...   (COMMAND is split as a shell would;
leading VAR=value words set the command's environment, as in a shell, with no process of their
own)
Output: {"NAME": {"mean": s, "median": s, "p10": s, "p90": s, "runs": n}, ...}
"""
import json
import os
import random
import re
import shlex
import statistics
import subprocess
import sys
import time

WARMUP = 5


ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def parse(command):
    """The argv of COMMAND and its environment (leading VAR=value words)."""
    words = shlex.split(command)
    env = dict(os.environ)
    while words and ASSIGNMENT.match(words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    return words, env


def run_once(command):
    argv, env = command
    started = time.perf_counter_ns()
    result = subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    elapsed = (time.perf_counter_ns() - started) / 1e9
    if result.returncode != 0:
        sys.stderr.buffer.write(result.stderr)
        sys.exit(f"bench: `{shlex.join(argv)}` exited {result.returncode}")
    return elapsed


def main():
    runs, out = int(sys.argv[1]), sys.argv[2]
    commands = dict(arg.split("=", 1) for arg in sys.argv[3:])
    argvs = {name: parse(command) for name, command in commands.items()}
    for argv in argvs.values():
        for _ in range(WARMUP):
            run_once(argv)
    times = {name: [] for name in argvs}
    for _ in range(runs):
        order = list(argvs)
        random.shuffle(order)
        for name in order:
            times[name].append(run_once(argvs[name]))
    results = {}
    for name, samples in times.items():
        samples.sort()
        results[name] = {
            "mean": statistics.mean(samples),
            "median": statistics.median(samples),
            "p10": samples[len(samples) // 10],
            "p90": samples[len(samples) * 9 // 10],
            "runs": len(samples),
        }
    with open(out, "w") as file:
        json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
