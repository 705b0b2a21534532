"""Drives `dcx mcp` with the official Python MCP SDK (stdio_client + ClientSession), one
scenario per run; asserts as it goes and exits non-zero, saying why, on the first failure.

Usage: client.py SCENARIO DCX [dcx mcp flags...]
Scenarios: tools (initialize, list tools, schemas, run_command cases, cwd persistence,
start/read/cancel), stopped (a stopped container is a tool error, and the server keeps
running), stdin-close (the server exits when stdin closes, killing what it started; prints the
server's pid for the caller to check), contract (what a model reads: the output budget and the
whole output's file, U+FFFD, progress bars, exit wording, yield and wait, cancellation, a 2 MB
command, the shell's own error lines, a removed directory), server (a web server started with
start_command serves 100 requests), rebuild (the session follows a container the reference CLI
rebuilt; the workspace folder comes in DCX_TEST_WORKSPACE, the reference CLI in
DCX_REFERENCE_CLI; a removed container then is a tool error), no-helper-files (without the
helper, as a user who is not root, the file tools say they used the engine's rights).
"""
import asyncio
import base64
import json
import os
import subprocess
import sys
import time

import anyio

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError


def text_of(result):
    return "".join(block.text for block in result.content if getattr(block, "type", "") == "text")


async def call(session, name, **arguments):
    result = await session.call_tool(name, arguments)
    return result, (result.structured_content or {})


async def tools(session):
    listed = await session.list_tools()
    names = {tool.name: tool for tool in listed.tools}
    expected = {"run_command", "start_command", "read_output", "send_input", "cancel_command",
                "container_info"}
    assert expected <= set(names), names.keys()
    for tool in listed.tools:
        schema = tool.input_schema
        assert schema.get("type") == "object", (tool.name, schema)
        assert len(tool.description or "") > 60, (tool.name, tool.description)
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    if jsonschema:
        for tool in listed.tools:
            jsonschema.validators.validator_for(tool.input_schema).check_schema(tool.input_schema)
    assert "command" in names["run_command"].input_schema["properties"]
    # A call of no such tool is a JSON-RPC error; arguments of the wrong type are a tool error
    # naming the problem (the MCP spec's input validation errors, for the model to correct);
    # the server goes on.
    try:
        result = await session.call_tool("no_such_tool", {})
    except MCPError as err:
        print(f"no_such_tool: JSON-RPC error {err.error.code}", file=sys.stderr)
        assert "no tool named `no_such_tool`; the tools are cancel_command," in err.error.message, err
    else:
        raise AssertionError(f"no_such_tool: answered {result}")
    result = await session.call_tool("run_command", {"command": 5})
    assert result.is_error and "expected a string" in text_of(result), result
    assert "argument `command`" in text_of(result), text_of(result)
    result = await session.call_tool("run_command", {"command": "true", "timeout_ms": "x"})
    assert result.is_error and "argument `timeout_ms`" in text_of(result), text_of(result)
    assert names["run_command"].input_schema.get("required") == ["command"]

    result, data = await call(session, "run_command", command="echo hello; echo oops >&2")
    assert not result.is_error, text_of(result)
    assert data["state"] == "exited" and data["exit_code"] == 0, data
    assert data["stdout"] == "hello\n" and data["stderr"] == "oops\n", data
    text = text_of(result)
    assert text.startswith("exited with code 0"), text
    assert "hello" in text and "oops" in text, text

    result, data = await call(session, "run_command", command="exit 3")
    assert data["exit_code"] == 3 and text_of(result).startswith("exited with code 3"), data

    result, data = await call(session, "run_command",
                              command="echo partial; sleep 37; echo never", timeout_ms=1500)
    assert data["state"] == "timed_out" and data["stdout"] == "partial\n", data
    assert text_of(result).startswith("timed out"), text_of(result)
    result, data = await call(session, "run_command",
                              command="for f in /proc/[0-9]*/cmdline; do tr '\\000' ' ' < $f; echo; done")
    assert "sleep 37" not in data["stdout"], data["stdout"]

    result, data = await call(session, "run_command", command="printf '\\377\\376ab'")
    assert base64.b64decode(data["stdout_b64"]) == b"\xff\xfeab", data
    assert "not UTF-8" in text_of(result), text_of(result)

    await call(session, "run_command", command="mkdir -p /tmp/mcp-wd && cd /tmp/mcp-wd && export MCP_VAR=kept")
    result, data = await call(session, "run_command", command="pwd; echo $MCP_VAR")
    assert data["stdout"] == "/tmp/mcp-wd\nkept\n", data

    result, data = await call(session, "start_command", command="while :; do echo tick; sleep 0.2; done")
    exec_id = data["exec_id"]
    offset, seen = 0, ""
    for _ in range(20):
        result, data = await call(session, "read_output", exec_id=exec_id, offset=offset)
        seen += data.get("stdout", "")
        offset = data["next_offset"]
        if seen.count("tick") >= 3:
            break
    assert seen.count("tick") >= 3 and data["state"] == "running", (seen, data)
    result, data = await call(session, "cancel_command", exec_id=exec_id)
    assert data["state"] == "cancelled", data

    result, data = await call(session, "start_command", command="read line; echo got $line")
    await call(session, "send_input", exec_id=data["exec_id"], data="this\n", eof=True)
    offset, seen = 0, ""
    for _ in range(20):
        # From the last offset: each call waits for new output or the end.
        result, out = await call(session, "read_output", exec_id=data["exec_id"], offset=offset)
        seen += out.get("stdout", "")
        offset = out["next_offset"]
        if out["done"]:
            break
    assert seen == "got this\n" and out["exit_code"] == 0, (seen, out)

    result, info = await call(session, "container_info")
    assert info["container_id"] and info["runtime"] in ("docker", "crun"), info
    assert "container" in text_of(result), text_of(result)
    print(json.dumps({"container_id": info["container_id"], "image": info["image"]}))


async def contract(session):
    # seq 1 300000: at most 30,000 characters, head and tail, one marker naming the whole size,
    # and the whole output in the file the marker names.
    result, data = await call(session, "run_command", command="seq 1 300000")
    text = text_of(result)
    assert len(text) <= 30_000, len(text)
    assert text.count("[… stdout is 1988895 bytes in all") == 1, text[:300]
    assert "\n1\n2\n3\n" in text and text.endswith("\n299999\n300000\n"), text[-200:]
    path = data["stdout_file"]
    assert path in text, (path, text[:400])
    result, check = await call(session, "run_command", command=f"seq 1 300000 | cmp - {path} && echo same")
    assert check["stdout"] == "same\n", check
    # A cut stream's text also fits in the structured result.
    assert len(data["stdout"]) <= 30_000, len(data["stdout"])

    # 589 kB with one 0xFF byte (at its end, where the tail shows it): one U+FFFD.
    result, data = await call(session, "run_command",
                              command="head -c 589000 /dev/zero | tr '\\0' a; printf '\\377\\n'")
    text = text_of(result)
    assert text.count("\ufffd") == 1, text[-300:]
    assert data["stdout_bytes"] == 589002, data["stdout_bytes"]

    # A 200-frame progress bar with colours: one line.
    result, data = await call(session, "run_command", command=(
        "i=0; while [ $i -lt 200 ]; do printf '\\r%3d%% \\033[32m#\\033[0m' $i; i=$((i+1)); done; echo"))
    assert data["stdout"] == "199% #\n", data["stdout"]
    result, data = await call(session, "run_command", raw=True, command="printf '\\033[1mb\\033[0m'")
    assert data["stdout"] == "\x1b[1mb\x1b[0m", data

    result, data = await call(session, "run_command", command="exit 143")
    assert text_of(result).startswith(
        "exited with code 143 (the code a death by SIGTERM also gives)"), text_of(result)

    # Non-interactive defaults.
    result, data = await call(session, "run_command",
                              command="echo $GIT_EDITOR $EDITOR $VISUAL $GIT_MERGE_AUTOEDIT $NO_COLOR $TERM")
    # TERM=dumb where the container sets none (crun's test config sets xterm).
    assert data["stdout"] in (": false false no 1 dumb\n", ": false false no 1 xterm\n"), data

    # A command past yield_ms answers running, with an exec id; one read_output follows it to
    # the end.
    started = time.monotonic()
    result, data = await call(session, "run_command", command="sleep 3; echo done", yield_ms=500)
    assert data["state"] == "running" and "read_output" in text_of(result), data
    assert time.monotonic() - started < 2.5, time.monotonic() - started
    result, out = await call(session, "read_output", exec_id=data["exec_id"], wait_ms=10_000)
    assert out["done"] and out["exit_code"] == 0 and out["stdout"] == "done\n", out
    # The same for start_command: a 3 s command needs one read_output.
    result, data = await call(session, "start_command", command="sleep 3; echo finished")
    result, out = await call(session, "read_output", exec_id=data["exec_id"], wait_ms=10_000)
    assert out["done"] and out["stdout"] == "finished\n", out

    # A cancelled call (notifications/cancelled, sent by the SDK when the caller gives up)
    # stops the command's whole group.
    with anyio.move_on_after(1.5):
        await session.call_tool("run_command", {"command": "sleep 1771 & sleep 1772; echo never"})
    started = time.monotonic()
    while True:
        result, data = await call(session, "run_command",
                                  command="ps -eo args | grep -c '^sleep 177[12]' || true")
        if data["stdout"] == "0\n":
            break
        assert time.monotonic() - started < 10, data
        await asyncio.sleep(0.1)
    print(json.dumps({"cancel_gone_after_s": round(time.monotonic() - started, 2)}), file=sys.stderr)

    # A 2 MB heredoc reaches the command whole.
    body = "".join(f"line {i} it's \"quoted\" $HOME `x`\n" for i in range(60000))
    assert len(body) > 2_000_000
    result, data = await call(session, "run_command",
                              command="cat > /tmp/mcp-big.txt <<'EOF'\n" + body + "EOF\nwc -c < /tmp/mcp-big.txt")
    assert data["stdout"] == f"{len(body.encode())}\n", (data, text_of(result)[:300])

    # The shell's own messages, with the user's own line numbers.
    result, data = await call(session, "run_command", command="true\n\nnosuchcmd-here")
    assert data["exit_code"] == 127, data
    assert data["stderr"].endswith("line 3: nosuchcmd-here: command not found\n"), data["stderr"]
    assert "dcx" not in data["stderr"], data["stderr"]

    # A removed working directory is an error naming it, once; container_info says so.
    await call(session, "run_command", command="mkdir -p /tmp/mcp-gone && cd /tmp/mcp-gone")
    # Removed by a background command (which leaves the session's state alone).
    result, data = await call(session, "start_command", command="rmdir /tmp/mcp-gone", cwd="/")
    result, out = await call(session, "read_output", exec_id=data["exec_id"], wait_ms=10_000)
    assert out["done"] and out["exit_code"] == 0, out
    result, info = await call(session, "container_info")
    assert info["cwd"] == "/tmp/mcp-gone" and info["cwd_removed"] is True, info
    result, data = await call(session, "run_command", command="echo ran")
    assert data["exit_code"] == 1 and data["stdout"] == "", data
    assert "the working directory /tmp/mcp-gone" in data["stderr"], data["stderr"]
    result, data = await call(session, "run_command", command="echo ran")
    assert data["stdout"] == "ran\n", data

    # Unknown parameters are refused by name.
    result = await session.call_tool("run_command", {"command": "true", "tiemout_ms": 5})
    assert result.is_error and "tiemout_ms" in text_of(result), text_of(result)


async def server(session):
    result, data = await call(session, "start_command",
                              command="busybox httpd -f -p 127.0.0.1:18080 -h /etc")
    exec_id = data["exec_id"]
    # Until it listens (start_command answers before the server is up).
    result, data = await call(session, "run_command", command=(
        "i=0; until wget -q -O /dev/null http://127.0.0.1:18080/hostname 2>/dev/null; do "
        "i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.1; done"))
    assert data["exit_code"] == 0, text_of(result)
    result, data = await call(session, "run_command", command=(
        "n=0; i=0; while [ $i -lt 100 ]; do i=$((i+1)); "
        "wget -q -O /dev/null http://127.0.0.1:18080/hostname && n=$((n+1)); done; echo $n"))
    assert data["stdout"] == "100\n", (data, text_of(result))
    # DCX_TEST_ALIVE_S: how long it must keep running and serving (scripts/soak-mcp-server.sh
    # gives 15 minutes; the test, none).
    alive = float(os.environ.get("DCX_TEST_ALIVE_S", "0"))
    started = time.monotonic()
    while time.monotonic() - started < alive:
        await asyncio.sleep(min(60, alive))
        result, out = await call(session, "read_output", exec_id=exec_id, wait_ms=0)
        assert out["state"] == "running", (round(time.monotonic() - started), out)
    if alive:
        result, data = await call(session, "run_command", command=(
            "n=0; i=0; while [ $i -lt 100 ]; do i=$((i+1)); "
            "wget -q -O /dev/null http://127.0.0.1:18080/hostname && n=$((n+1)); done; echo $n"))
        assert data["stdout"] == "100\n", (data, text_of(result))
        print(json.dumps({"alive_after_s": round(time.monotonic() - started)}), file=sys.stderr)
    result, out = await call(session, "read_output", exec_id=exec_id, wait_ms=0)
    assert out["state"] == "running", out
    print(exec_id)


async def rebuild(session):
    workspace, reference = os.environ["DCX_TEST_WORKSPACE"], os.environ["DCX_REFERENCE_CLI"]

    def up():
        out = subprocess.run([reference, "up", "--workspace-folder", workspace,
                              "--remove-existing-container"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        made = json.loads(out.stdout.strip().splitlines()[-1])["containerId"]
        # Said at once, so that the caller removes it whatever happens next.
        print(made, flush=True)
        return made

    result, data = await call(session, "run_command", command="cd /tmp && export GONE_VAR=1; hostname")
    old = data["stdout"].strip()
    new = up()
    started = time.monotonic()
    result, data = await call(session, "run_command", command="hostname; pwd; echo ${GONE_VAR-unset}")
    elapsed = time.monotonic() - started
    assert not result.is_error, text_of(result)
    text = text_of(result)
    assert text.startswith(f"The dev container was rebuilt ({old} is now {new[:12]})"), text
    assert data["note"].startswith("The dev container was rebuilt"), data
    assert data["stdout"].startswith(new[:12] + "\n") and data["stdout"].endswith("unset\n"), data
    print(json.dumps({"followed_after_s": round(elapsed, 2)}), file=sys.stderr)
    # A file tool follows too.
    newer = up()
    result, data = await call(session, "read_file", path="/etc/hostname")
    assert not result.is_error and newer[:12] in text_of(result), text_of(result)
    assert text_of(result).startswith("The dev container was rebuilt"), text_of(result)
    # Removed and not replaced: a tool error naming it, for commands and files alike.
    subprocess.run(["docker", "rm", "-f", newer], capture_output=True, check=True)
    for name, arguments in [("run_command", {"command": "true"}),
                            ("read_file", {"path": "/etc/hostname"})]:
        result = await session.call_tool(name, arguments)
        assert result.is_error and "is gone" in text_of(result), (name, text_of(result))


async def no_helper_files(session):
    # Without the helper, as a user who is not root: the file tools say whose rights they used.
    result, data = await call(session, "read_file", path="/etc/hostname")
    assert not result.is_error, text_of(result)
    assert "act with the engine's rights, root, not as vscode" in text_of(result), text_of(result)
    assert data["as_user"] is False, data
    result, info = await call(session, "container_info")
    assert info["transport"] == "exec" and info["remote_user"] == "vscode", info


async def stopped(session):
    for _ in range(2):
        result, _ = await call(session, "run_command", command="true")
        assert result.is_error, result
        print(text_of(result))


async def stdin_close(session):
    result, data = await call(session, "start_command", command="sleep 39")
    assert data["state"] == "running", data


async def main():
    scenario, dcx, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
    # The whole environment (DCX_HELPER, XDG_CACHE_HOME), not the SDK's short default list.
    params = StdioServerParameters(command=dcx, args=["mcp", *flags], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "dcx", init.server_info
            await {"tools": tools, "stopped": stopped, "stdin-close": stdin_close,
                   "contract": contract, "server": server, "rebuild": rebuild,
                   "no-helper-files": no_helper_files}[scenario](session)


asyncio.run(main())
