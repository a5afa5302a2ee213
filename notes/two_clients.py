#!/usr/bin/env python3
"""Two raw WebSocket clients for the notes: every byte sent and received is printed.

    python3 notes/two_clients.py [--port 8080] [--text Hello]

Client A and client B upgrade on /chat, A sends one masked text frame, B
reads what the server broadcast. Then both stay connected, printing what
arrives (heartbeat pings included), until Ctrl-C. Nothing here answers a
ping, so after two heartbeat intervals the server drops both: watch it.

This is the client of notes/08-debugger.md; it speaks the protocol by hand
(the standard library only), so nothing is hidden.
"""
import argparse
import select
import socket

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the RFC 6455 example key
MASK = bytes([0x37, 0xFA, 0x21, 0x3D])  # the RFC 6455 example mask


def show(who, direction, data):
    printable = all(32 <= b < 127 or b in (10, 13) for b in data)
    if printable:
        text = data.decode().replace("\r\n", "\\r\\n\n        ")
        print(f"{who} {direction} {len(data)} bytes:\n        {text.rstrip()}")
    else:
        print(f"{who} {direction} {len(data)} bytes: {data.hex(' ')}")


def upgrade(who, port):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(None)  # the server may sit at a breakpoint for minutes
    request = (
        "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    sock.sendall(request)
    show(who, "sent", request)
    received = b""
    while b"\r\n\r\n" not in received:
        received += recv_or_exit(who, sock)
    head, rest = received.split(b"\r\n\r\n", 1)
    show(who, "got", head + b"\r\n\r\n")
    # The welcome frame may come in the same read as the 101, or later.
    while len(rest) < 2 or len(rest) < 2 + rest[1]:
        rest += recv_or_exit(who, sock)
    show(who, "got", rest)
    return sock


def recv_or_exit(who, sock):
    data = sock.recv(4096)
    if not data:
        raise SystemExit(f"{who}: the server closed the connection")
    return data


def masked_text_frame(text):
    payload = text.encode()
    assert len(payload) <= 125, "keep it short: one length byte"
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + MASK + masked


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--text", default="Hello")
    args = parser.parse_args()
    a = upgrade("A", args.port)
    b = upgrade("B", args.port)
    frame = masked_text_frame(args.text)
    a.sendall(frame)
    show("A", "sent", frame)
    clients = {a: "A", b: "B"}
    try:
        while clients:
            ready, _, _ = select.select(list(clients), [], [])
            for sock in ready:
                data = sock.recv(4096)
                if not data:
                    print(f"{clients.pop(sock)} closed by the server")
                    continue
                show(clients[sock], "got", data)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
