"""Drives `dcx mcp` with the official Python MCP SDK (stdio_client + ClientSession), one
scenario per run; asserts as it goes and exits non-zero, saying why, on the first failure.

Usage: client.py SCENARIO DCX [dcx mcp flags...]
Scenarios: tools (initialize, list tools, schemas, run_command cases, cwd persistence,
start/read/cancel), stopped (a stopped container is a tool error, and the server keeps
running), stdin-close (the server exits when stdin closes, killing what it started; prints the
server's pid for the caller to check).
"""
import asyncio
import base64
import json
import sys

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
    else:
        raise AssertionError(f"no_such_tool: answered {result}")
    result = await session.call_tool("run_command", {"command": 5})
    assert result.is_error and "expected a string" in text_of(result), result
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
    params = StdioServerParameters(command=dcx, args=["mcp", *flags])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "dcx", init.server_info
            await {"tools": tools, "stopped": stopped, "stdin-close": stdin_close}[scenario](session)


asyncio.run(main())
