#!/usr/bin/env python3
"""A TCP relay that adds latency: every chunk is held DELAY ms in each direction.

This kernel has no `netem` qdisc, so a slow link is made in user space: each chunk read on one
side is written to the other DELAY ms after it was read (in order; chunks behind it are not held
up longer), so a request and its answer take 2 x DELAY more, a round trip of 2 x DELAY, while the
throughput stays the machine's. Put one in front of each endpoint (the Docker daemon's TCP port,
its TLS listener, sshd) and give the same relay to `docker` and to dcx.

Usage: latency-relay.py LISTEN_PORT TARGET_HOST:TARGET_PORT [DELAY_MS]   (default 5 ms)
It listens on 127.0.0.1:LISTEN_PORT (0: any free port) and prints `ready PORT` once it does.
"""
import asyncio
import socket
import sys
import time


def quick_ack(sock):
    """Acknowledges what comes at once: a sender that waits for the acknowledgement of its last
    small write before the next (Nagle's rule: socat's TLS listener) is not held up by the
    kernel's delayed ACK here, which no real link would add to the latency asked for."""
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass


async def pipe(reader, writer, delay, sock):
    """Copies reader to writer, each chunk leaving `delay` seconds after it came."""
    queue = asyncio.Queue()

    async def read():
        while True:
            quick_ack(sock)
            chunk = await reader.read(64 * 1024)
            await queue.put((time.monotonic() + delay, chunk))
            if not chunk:
                return

    async def write():
        while True:
            due, chunk = await queue.get()
            pause = due - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            if not chunk:
                # The other side's end of input, passed on after the same delay.
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        pass


async def serve(client_reader, client_writer, target, delay):
    host, port = target
    try:
        # The connect itself crosses the slow link too: one round trip.
        await asyncio.sleep(2 * delay)
        daemon_reader, daemon_writer = await asyncio.open_connection(host, port)
    except OSError:
        client_writer.close()
        return
    client_sock = client_writer.get_extra_info("socket")
    daemon_sock = daemon_writer.get_extra_info("socket")
    for sock in (client_sock, daemon_sock):
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await asyncio.gather(
        pipe(client_reader, daemon_writer, delay, client_sock),
        pipe(daemon_reader, client_writer, delay, daemon_sock),
    )
    for writer in (client_writer, daemon_writer):
        writer.close()


async def main():
    listen = int(sys.argv[1])
    host, port = sys.argv[2].rsplit(":", 1)
    delay = (float(sys.argv[3]) if len(sys.argv) > 3 else 5.0) / 1000
    server = await asyncio.start_server(
        lambda r, w: serve(r, w, (host, int(port)), delay), "127.0.0.1", listen
    )
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
