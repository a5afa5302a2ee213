#!/usr/bin/env python3
"""What readers that never read cost: the memory probe of notes/09-shared-log.md.

    cargo build --release
    python3 notes/stuck_readers.py [--readers 2000] [--mib 32] [-- MIOCHAT FLAGS]

Starts target/release/miochat on a free loopback port, connects READERS chat
clients that upgrade, take their welcome and never read again, one client
that reads everything, and one sender that sends MIB MiB in 64 KiB binary
messages. While it runs, it samples the server's /proc/PID/status (VmRSS,
VmHWM: the kernel's exact peak) and /proc/net/sockstat ("TCP: ... mem N":
pages of 4 KiB the kernel holds for all TCP sockets on the machine, so
other programs' sockets count too: the baseline is printed). It ends once
the stuck readers have been dropped, or after two minutes.

Needs a descriptor limit above READERS + 10 for this process and the
server (`ulimit -n 8192`). The standard library only.
"""
import argparse
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

REQUEST = (
    "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
).encode()
SIZE = 64 * 1024


def upgrade(port):
    """A chat client that has read its 101 and its welcome frame, and nothing more."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(REQUEST)
    received = b""
    while True:
        head, _, rest = received.partition(b"\r\n\r\n")
        if _ and len(rest) >= 2 and len(rest) >= 2 + rest[1]:
            return sock
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("the server closed during the upgrade")
        received += chunk


def binary_frame(seq):
    """A masked binary frame of SIZE bytes numbered `seq`. The key is zero,
    so the masked payload is the payload (RFC 6455 §5.3 allows any key)."""
    payload = struct.pack(">I", seq) + bytes(SIZE - 4)
    return bytes([0x82, 0x80 | 127]) + struct.pack(">Q", SIZE) + bytes(4) + payload


def read_exact(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise SystemExit("the reading client was closed by the server")
        data += chunk
    return bytes(data)


def read_message(sock):
    """The next server frame's payload (server frames are never masked)."""
    first, second = read_exact(sock, 2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack(">H", read_exact(sock, 2))[0]
    elif length == 127:
        length = struct.unpack(">Q", read_exact(sock, 8))[0]
    return first & 0x0F, read_exact(sock, length)


def status(port):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    sock.close()
    return int(re.search(rb'"connections": (\d+)', answer).group(1))


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
    return fields


def tcp_pages():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                return int(line.split()[-1])
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/miochat")
    parser.add_argument("--readers", type=int, default=2000)
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("flags", nargs="*", help="more miochat flags, after --")
    args = parser.parse_args()
    messages = args.mib * 1024 * 1024 // SIZE

    server = subprocess.Popen(
        [args.binary, "--addr", "127.0.0.1:0", *args.flags],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUST_LOG": "info", "NO_COLOR": "1"},
    )
    log = []
    listening = threading.Event()

    def take_log():
        for line in server.stderr:
            log.append(line)
            if "listening on" in line:
                listening.set()

    threading.Thread(target=take_log, daemon=True).start()
    if not listening.wait(10):
        raise SystemExit("the server did not start")
    port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", "".join(log)).group(1))

    samples = {"rss": 0, "pages": 0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                samples["rss"] = max(samples["rss"], proc_status(server.pid)["VmRSS"])
            except (OSError, KeyError):
                pass
            samples["pages"] = max(samples["pages"], tcp_pages())
            time.sleep(0.02)

    try:
        base = proc_status(server.pid)
        base_pages = tcp_pages()
        print(f"server pid {server.pid}, port {port}: RSS {base['VmRSS']} KiB, "
              f"kernel TCP {base_pages} pages before any client")
        stuck = [upgrade(port) for _ in range(args.readers)]
        reader = upgrade(port)
        sender = upgrade(port)
        while status(port) < args.readers + 2:
            time.sleep(0.05)
        idle = proc_status(server.pid)
        print(f"{args.readers} stuck readers, 1 reader, 1 sender upgraded: "
              f"RSS {idle['VmRSS']} KiB, kernel TCP {tcp_pages()} pages")
        threading.Thread(target=sample, daemon=True).start()

        received = []

        def read_all():
            for seq in range(messages):
                opcode, payload = read_message(reader)
                assert opcode == 2 and len(payload) == SIZE, (opcode, len(payload))
                assert struct.unpack(">I", payload[:4])[0] == seq, f"lost or out of order at {seq}"
                received.append(time.monotonic())

        reading = threading.Thread(target=read_all)
        started = time.monotonic()
        reading.start()
        for seq in range(messages):
            sender.sendall(binary_frame(seq))
        sent = time.monotonic()
        reading.join()
        left = time.monotonic() + 120
        while status(port) > 2 and time.monotonic() < left:
            time.sleep(0.1)
        done.set()
        time.sleep(0.05)
        end = proc_status(server.pid)
        text = "".join(log)
        print(f"{args.mib} MiB sent in {sent - started:.1f} s; the reader had all "
              f"{len(received)} messages after {received[-1] - started:.1f} s")
        print(f"stuck readers dropped: {text.count('is a slow consumer')}; "
              f"open now: {status(port)}")
        print(f"server RSS: peak (VmHWM) {end['VmHWM']} KiB, "
              f"{end['VmHWM'] - idle['VmRSS']} KiB over the upgraded-and-idle {idle['VmRSS']} KiB; "
              f"now {end['VmRSS']} KiB")
        print(f"kernel TCP memory: peak {samples['pages']} pages = "
              f"{samples['pages'] * 4 / 1024:.0f} MiB "
              f"({(samples['pages'] - base_pages) * 4 / 1024:.0f} MiB over the baseline)")
        for line in log:
            if re.search(r"senders (paused|resumed)", line):
                line = line.rstrip().split("] ", 1)[-1]
                # The pause names every reader that holds the log: 2,000 here.
                head, by, holders = line.partition(" is unread by ")
                holders = holders.split(", ")
                if len(holders) > 3:
                    by += ", ".join(holders[:3]) + f" and {len(holders) - 3} more"
                    line = head + by
                print("log:", line)
        first = next((l for l in log if "is a slow consumer" in l), None)
        if first:
            print("log:", first.rstrip().split("] ", 1)[-1])
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
