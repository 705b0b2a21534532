"""Drives `dcx mcp`'s file tools with the official Python MCP SDK (stdio_client +
ClientSession); asserts as it goes and exits non-zero, saying why, on the first failure.

Usage: files.py SCENARIO DCX [dcx mcp flags...]
Scenarios: tools, user.
tools: the four tools in tools/list with their annotations and output schemas; write_file
(parent folders made); edit_file round trips with read_file, a dry run that changes nothing,
not-found and ambiguous edits refused, replace_all; read_file ranges (offset/limit, head,
tail), the budget marker and reading on from it, invalid UTF-8 counted; list_directory and its
bound; relative paths from the session's current directory. Every structured result is checked
against its tool's outputSchema. Prints the edited file's text as the container has it, and the
session's transport (helper or exec).
user (run with `--user` naming someone other than root, through the helper): the tools act as
that user: what they write is the user's, and what the user may not read, write or list is
refused with a message saying so.
"""
import asyncio
import json
import os
import sys

import jsonschema
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

FILE_TOOLS = {
    # name: (readOnlyHint, destructiveHint, idempotentHint)
    "read_file": (True, False, True),
    "write_file": (False, True, True),
    "edit_file": (False, True, False),
    "list_directory": (True, False, True),
}


def text_of(result):
    return "".join(block.text for block in result.content if getattr(block, "type", "") == "text")


class Files:
    def __init__(self, session, schemas):
        self.session = session
        self.schemas = schemas

    async def call(self, name, **arguments):
        result = await self.session.call_tool(name, arguments)
        data = result.structured_content or {}
        if not result.is_error and name in self.schemas:
            jsonschema.validate(data, self.schemas[name])
        return result, data

    async def ok(self, name, **arguments):
        result, data = await self.call(name, **arguments)
        assert not result.is_error, (name, arguments, text_of(result))
        return result, data

    async def refused(self, name, **arguments):
        result, _ = await self.call(name, **arguments)
        assert result.is_error, (name, arguments, text_of(result))
        return text_of(result)

    async def sh(self, command):
        _, data = await self.ok("run_command", command=command)
        assert data["exit_code"] == 0, data
        return data.get("stdout", "")


async def tools_listed(session):
    listed = await session.list_tools()
    tools = {tool.name: tool for tool in listed.tools}
    schemas = {}
    for name, (read_only, destructive, idempotent) in FILE_TOOLS.items():
        assert name in tools, tools.keys()
        tool = tools[name]
        hints = tool.annotations
        assert hints is not None, name
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint,
                hints.open_world_hint) == (read_only, destructive, idempotent, False), (name, hints)
        assert len(tool.description or "") > 100, (name, tool.description)
        jsonschema.validators.validator_for(tool.input_schema).check_schema(tool.input_schema)
        schema = tool.output_schema
        assert schema and schema.get("type") == "object", (name, schema)
        jsonschema.validators.validator_for(schema).check_schema(schema)
        schemas[name] = schema
    assert tools["read_file"].input_schema.get("required") == ["path"], tools["read_file"].input_schema
    assert sorted(tools["edit_file"].input_schema.get("required")) == ["new_text", "old_text", "path"]
    return schemas


async def scenario(session):
    files = Files(session, await tools_listed(session))
    base = "/tmp/mcp-files"
    await files.sh(f"rm -rf {base}")

    # write_file makes the missing folders.
    content = "def greet():\n    return 'hello'\n\nvalue = 1\nvalue = 1\n"
    result, data = await files.ok("write_file", path=f"{base}/src/app.py", content=content)
    assert data["bytes_written"] == len(content.encode()), data
    assert data["path"] == f"{base}/src/app.py" and data["mode"] == "0644", data
    assert "wrote" in text_of(result), text_of(result)
    assert await files.sh(f"cat {base}/src/app.py") == content

    # A dry run shows the diff and changes nothing.
    result, data = await files.ok("edit_file", path=f"{base}/src/app.py", old_text="'hello'",
                                  new_text="'hi'", dry_run=True)
    assert data["dry_run"] is True and data["replacements"] == 1, data
    assert "bytes_written" not in data or data["bytes_written"] is None, data
    assert "-    return 'hello'\n+    return 'hi'\n" in data["diff"], data["diff"]
    assert "dry run" in text_of(result), text_of(result)
    assert await files.sh(f"cat {base}/src/app.py") == content

    # The edit, then read_file sees it.
    result, data = await files.ok("edit_file", path=f"{base}/src/app.py", old_text="'hello'",
                                  new_text="'hi'")
    assert data["dry_run"] is False and data["replacements"] == 1, data
    assert data["diff"].startswith(f"--- a{base}/src/app.py\n+++ b{base}/src/app.py\n@@"), data["diff"]
    content = content.replace("'hello'", "'hi'")
    assert data["bytes_written"] == len(content.encode()), data
    result, data = await files.ok("read_file", path=f"{base}/src/app.py")
    assert data["content"] == content and data["total_lines"] == 5, data
    assert (data["first_line"], data["last_line"], data["truncated"]) == (1, 5, False), data
    assert text_of(result).startswith("     1\tdef greet():\n     2\t    return 'hi'\n"), text_of(result)

    # Refusals change nothing and say why.
    message = await files.refused("edit_file", path=f"{base}/src/app.py", old_text="absent",
                                  new_text="x")
    assert "not found" in message, message
    message = await files.refused("edit_file", path=f"{base}/src/app.py", old_text="value = 1",
                                  new_text="value = 2")
    assert "2 times" in message and "replace_all" in message, message
    assert await files.sh(f"cat {base}/src/app.py") == content
    message = await files.refused("edit_file", path=f"{base}/src/none.py", old_text="a",
                                  new_text="b")
    assert "No such file" in message or "no such" in message.lower(), message
    _, data = await files.ok("edit_file", path=f"{base}/src/app.py", old_text="value = 1",
                             new_text="value = 2", replace_all=True)
    assert data["replacements"] == 2, data
    content = content.replace("value = 1", "value = 2")

    # Relative paths start from the session's current directory.
    await files.ok("run_command", command=f"cd {base}")
    _, data = await files.ok("read_file", path="src/app.py")
    assert data["path"] == f"{base}/src/app.py" and data["content"] == content, data

    # Ranges.
    lines = "".join(f"line {n}\n" for n in range(1, 101))
    await files.ok("write_file", path="many.txt", content=lines)
    _, data = await files.ok("read_file", path="many.txt", offset=10, limit=3)
    assert data["content"] == "line 10\nline 11\nline 12\n", data
    assert (data["first_line"], data["last_line"], data["next_offset"]) == (10, 12, 13), data
    _, data = await files.ok("read_file", path="many.txt", head=2)
    assert data["content"] == "line 1\nline 2\n", data
    result, data = await files.ok("read_file", path="many.txt", tail=2)
    assert data["content"] == "line 99\nline 100\n" and data["first_line"] == 99, data
    assert text_of(result) == "    99\tline 99\n   100\tline 100\n", text_of(result)
    await files.refused("read_file", path="many.txt", head=1, tail=1)
    await files.refused("read_file", path="many.txt", max_chars=10)
    message = await files.refused("read_file", path="many.txt", offset=500)
    assert "past the end" in message and "100 lines" in message, message

    # The budget: whole lines, then a marker saying how to read on.
    result, data = await files.ok("read_file", path="many.txt", max_chars=500)
    text = text_of(result)
    assert len(text) <= 500, len(text)
    marker = text.rstrip("\n").split("\n")[-1]
    next_offset = data["next_offset"]
    assert data["truncated"] and next_offset > 1, data
    assert marker.startswith("[… lines ") and f"read on with offset={next_offset}]" in marker, marker
    _, more = await files.ok("read_file", path="many.txt", offset=next_offset, limit=1)
    assert more["content"] == f"line {next_offset}\n", more
    # The default budget: 30000 characters.
    await files.sh("seq 1 20000 | sed 's/$/ some text to fill the line/' > big.txt")
    result, data = await files.ok("read_file", path="big.txt")
    assert len(text_of(result)) <= 30000 and data["truncated"], (len(text_of(result)), data["last_line"])
    assert "left out to stay within 30000 characters" in text_of(result), text_of(result)[-300:]

    # Bytes that are not UTF-8.
    await files.sh("printf 'ok\\377\\376 end\\n' > bin.txt")
    result, data = await files.ok("read_file", path="bin.txt")
    assert data["content"] == "ok\ufffd\ufffd end\n" and data["invalid_utf8"] == 2, data
    assert "U+FFFD" in text_of(result), text_of(result)
    message = await files.refused("edit_file", path="bin.txt", old_text="ok", new_text="no")
    assert "not UTF-8" in message, message

    # Listings.
    await files.sh("mkdir -p list && touch list/a list/c && mkdir list/b && ln -s a list/l && printf 12345 > list/a")
    result, data = await files.ok("list_directory", path="list")
    assert data["path"] == f"{base}/list" and data["total"] == 4 and not data["truncated"], data
    entries = {entry["name"]: entry for entry in data["entries"]}
    assert [entry["name"] for entry in data["entries"]] == ["a", "b", "c", "l"], data
    assert entries["a"]["kind"] == "file" and entries["a"]["size"] == 5, entries
    assert entries["b"]["kind"] == "directory", entries
    assert entries["l"]["kind"] == "symlink" and entries["l"]["link_target"] == "a", entries
    text = text_of(result)
    assert "b/" in text and "l -> a" in text, text
    result, data = await files.ok("list_directory", path="list", max_entries=2)
    assert len(data["entries"]) == 2 and data["truncated"] and data["total"] == 4, data
    assert "2 more entries left out" in text_of(result), text_of(result)
    _, data = await files.ok("list_directory")
    assert data["path"] == base and "src" in [entry["name"] for entry in data["entries"]], data
    message = await files.refused("list_directory", path="many.txt")
    assert "not a directory" in message, message

    _, info = await files.ok("container_info")
    print(json.dumps({"content": await files.sh(f"cat {base}/src/app.py"),
                      "transport": info["transport"]}))


async def as_user(session):
    files = Files(session, await tools_listed(session))
    user = (await files.sh("id -un")).strip()
    assert user != "root", user
    base = f"/tmp/mcp-files-{user}"
    _, data = await files.ok("write_file", path=f"{base}/mine.txt", content="mine\n")
    assert await files.sh(f"stat -c %U {base} {base}/mine.txt") == f"{user}\n{user}\n"
    for message in [
        await files.refused("read_file", path="/etc/shadow"),
        await files.refused("write_file", path="/root/new.txt", content="x"),
        await files.refused("list_directory", path="/root"),
        await files.refused("edit_file", path="/etc/hostname", old_text=(await files.sh(
            "cat /etc/hostname")).strip(), new_text="changed"),
    ]:
        assert "as the session's user" in message, message
    _, data = await files.ok("read_file", path="/etc/hostname")
    assert data["content"] != "changed\n", data
    print(json.dumps({"user": user}))


async def main():
    scenario_name, dcx, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
    # The whole environment (DCX_HELPER, XDG_CACHE_HOME), not the SDK's short default list.
    params = StdioServerParameters(command=dcx, args=["mcp", *flags], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await {"tools": scenario, "user": as_user}[scenario_name](session)


asyncio.run(main())
