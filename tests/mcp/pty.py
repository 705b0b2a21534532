"""Drives `dcx mcp` in PTY mode with the official Python MCP SDK (stdio_client +
ClientSession); asserts as it goes and exits non-zero, saying why, on the first failure.

Usage: pty.py DCX [dcx mcp flags...]
The scenario: the tools list resize_terminal and start_command's `tty`; a python3 REPL shows
`>>>`, answers `6*7` and ends at ^D; an interactive bash on a terminal shows its prompt on the
rendered screen, answers a typed line, reports its size with `stty size` before and after
resize_terminal, runs `top` (its table on the screen, `q` quits), and ends at ^D.
"""
import asyncio
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def text_of(result):
    return "".join(block.text for block in result.content if getattr(block, "type", "") == "text")


async def call(session, name, **arguments):
    result = await session.call_tool(name, arguments)
    assert not result.is_error, (name, arguments, text_of(result))
    return result, (result.structured_content or {})


def last_row(text):
    """The last row of the screen in read_output's text that is not blank."""
    rows = text.split(" ---\n", 1)[-1].rsplit("\nnext_offset", 1)[0]
    return rows.rstrip("\n").rsplit("\n", 1)[-1]


class Terminal:
    def __init__(self, session, exec_id):
        self.session, self.exec_id, self.offset = session, exec_id, 0

    async def until(self, what, done):
        """Reads until the text (the rendered screen) satisfies `done`; the last read."""
        deadline = time.monotonic() + 30
        while True:
            result, out = await call(self.session, "read_output", exec_id=self.exec_id,
                                     offset=self.offset)
            self.offset = out["next_offset"]
            text = text_of(result)
            if done(text):
                return text, out
            assert not out["done"] and time.monotonic() < deadline, (what, text, out)

    async def type(self, data="", keys=()):
        await call(self.session, "send_input", exec_id=self.exec_id, data=data, keys=list(keys))


async def scenario(session):
    listed = await session.list_tools()
    tools = {tool.name: tool for tool in listed.tools}
    assert "resize_terminal" in tools, tools.keys()
    start_schema = tools["start_command"].input_schema["properties"]
    assert {"tty", "rows", "cols"} <= set(start_schema), start_schema
    assert "keys" in tools["send_input"].input_schema["properties"]
    assert "PTY" in tools["start_command"].description

    # A python3 REPL.
    result, data = await call(session, "start_command", command="python3 -q", tty=True)
    repl = Terminal(session, data["exec_id"])
    text, out = await repl.until("python's prompt", lambda text: last_row(text) == ">>>")
    await repl.type("6*7", ["Enter"])
    text, out = await repl.until("python's answer", lambda text: "\n42\n>>>" in text)
    await repl.type(keys=["C-d"])
    text, out = await repl.until("python's end", lambda text: text.startswith("exited with code 0"))

    result, data = await call(session, "start_command", command="bash --norc --noprofile -i",
                              env={"PS1": ">>> "}, tty=True)
    assert data["state"] == "running", data
    term = Terminal(session, data["exec_id"])
    text, out = await term.until("the prompt", lambda text: ">>>" in text)
    assert text.startswith("still running\n--- screen (24x80, cursor at row 0, column 4) ---\n>>>\n"), text
    screen = out["screen"]
    assert (screen["rows_n"], screen["cols_n"], len(screen["rows"])) == (24, 80, 24), screen
    assert screen["cursor"] == {"row": 0, "col": 4}, screen
    assert out["stdout"].endswith(">>> ") and out.get("stderr", "") == "", out

    await term.type("echo $((6*7)) $TERM; stty size", ["Enter"])
    text, out = await term.until("the answer", lambda text: "\n24 80\n>>>\n" in text)
    # TERM: the container's own when it sets one (Docker's `xterm` for a `-t` container),
    # else xterm-256color; never dumb.
    assert "\n42 xterm" in text, text

    result, resized = await call(session, "resize_terminal", exec_id=term.exec_id, rows=30, cols=100)
    assert (resized["rows"], resized["cols"]) == (30, 100), resized
    await term.type("stty size", ["Enter"])
    text, out = await term.until("the new size", lambda text: "\n30 100\n>>>\n" in text)
    assert "--- screen (30x100," in text, text

    await term.type("top", ["Enter"])
    await term.until("top's table", lambda text: "PID" in text and "COMMAND" in text)
    await term.type(keys=["q"])
    text, out = await term.until("the prompt after top", lambda text: last_row(text) == ">>>")

    # An unknown key is a tool error naming it.
    result = await session.call_tool("send_input", {"exec_id": term.exec_id, "keys": ["Sup"]})
    assert result.is_error and "unknown key `Sup`" in text_of(result), text_of(result)

    await term.type(keys=["C-d"])
    text, out = await term.until("the end", lambda text: text.startswith("exited with code 0"))
    print(text)


async def main():
    dcx, flags = sys.argv[1], sys.argv[2:]
    params = StdioServerParameters(command=dcx, args=["mcp", *flags])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await scenario(session)


asyncio.run(main())
