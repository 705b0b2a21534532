"""A small client of `dcx serve`'s unix socket (newline-delimited JSON), with the standard
library only. `Agent(path).call(method, **params)` returns the answer's `data`, or raises
`AgentError(code, message)`; `stream()` yields an `exec.stream`'s events."""
import itertools
import json
import socket


class AgentError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Agent:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        self.ids = itertools.count(1)

    def send(self, method, params):
        request_id = next(self.ids)
        line = json.dumps({"id": request_id, "method": method, "params": params})
        self.file.write(line.encode() + b"\n")
        self.file.flush()
        return request_id

    def read(self):
        line = self.file.readline()
        if not line:
            raise EOFError("the server closed the connection")
        return json.loads(line)

    def call(self, method, **params):
        request_id = self.send(method, params)
        while True:
            answer = self.read()
            if answer.get("id") == request_id and "event" not in answer:
                if not answer["ok"]:
                    raise AgentError(answer["error"]["code"], answer["error"]["message"])
                return answer["data"]

    def stream(self, **params):
        request_id = self.send("exec.stream", params)
        while True:
            event = self.read()
            if event.get("id") == request_id:
                yield event
                if event.get("event") == "end" or event.get("ok") is False:
                    return
