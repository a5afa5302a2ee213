#!/usr/bin/env python3
"""System calls and wake-ups per broadcast message: miochat, tokio-tungstenite, Node ws.

    python3 bench/syscalls.py [--receivers 100] [--messages 200] [--reps 3]
    make syscalls                      (builds the servers first)

For each server: start it (pinned to CPU 0 when there are two CPUs),
connect RECEIVERS chat clients and one sender and wait for every welcome,
then attach `strace -c -f` to every thread of the server and send MESSAGES
text messages of 64 bytes. Two loads:

  paced  one message at a time: the next is sent once every receiver has
         the last, so each message is one broadcast on its own
  burst  all messages in one write: the server may batch as it likes

Only the broadcast is counted: strace attaches after the upgrades and
detaches before the clients leave. The same load runs once before that
without strace, for the server's CPU time per delivery (schedstat, all
threads): strace slows every system call down, so that figure would not
mean much traced. A wake-up is one return of epoll_wait
(or epoll_pwait, poll...): one time the server's thread came back from
waiting for events. Figures are medians over REPS runs, each on a fresh
server; the clients check that every receiver got every message, in order.

Writes to target/syscalls/ (untracked) and prints a Markdown table.
The load goes to 127.0.0.1 only, and every wait is bounded.
"""

import argparse
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "target", "syscalls")
WAKEUPS = ("epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect6")
WRITES = ("write", "writev", "sendto", "sendmsg", "sendmmsg")
READS = ("read", "readv", "recvfrom", "recvmsg", "recvmmsg")
DEADLINE = 60.0  # seconds: a stuck run fails instead of hanging
NO_HEARTBEAT_MS = "3600000"  # no ping may land inside a measurement

SERVERS = {
    "miochat": {
        "argv": [os.path.join(ROOT, "target/release/miochat"), "--heartbeat-ms", NO_HEARTBEAT_MS],
        # Only the line with the address: any other log line would be a write of its own.
        "env": {"RUST_LOG": "warn,miochat::listening=info"},
    },
    "tokio-ws": {
        "argv": [os.path.join(ROOT, "bench/target/release/tokio-ws"), "--threads", "1",
                 "--heartbeat-ms", NO_HEARTBEAT_MS],
        "env": {},
    },
    "node-ws": {
        "argv": ["node", os.path.join(ROOT, "bench/peers/node-ws/server.js"), "--heartbeat-ms", NO_HEARTBEAT_MS],
        "env": {},
    },
}


# ---- the servers -----------------------------------------------------------------------


def pin(cpu):
    """taskset for CPU `cpu` when the machine has two CPUs or more, else nothing."""
    return ["taskset", "-c", str(cpu)] if os.cpu_count() >= 2 else []


def start_server(name, log_path):
    """Starts a server on a free port; returns (process, port) once it listens."""
    spec = SERVERS[name]
    log = open(log_path, "w")
    env = dict(os.environ, **spec["env"])
    proc = subprocess.Popen(pin(0) + spec["argv"] + ["--addr", "127.0.0.1:0"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        with open(log_path) as f:
            for line in f:
                if "listening on 127.0.0.1:" in line:
                    port = line.split("listening on 127.0.0.1:")[1].split()[0]
                    return proc, int(port)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"syscalls.py: {name} did not start; see {log_path}")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- the clients -----------------------------------------------------------------------

MASK = bytes([0x37, 0xFA, 0x21, 0x3D])
UPGRADE = (
    "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()


def text_frame(text):
    """A masked client text frame of under 126 bytes (RFC 6455 §5.2, §5.3)."""
    payload = text.encode()
    return bytes([0x81, 0x80 | len(payload)]) + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


class Receiver:
    """One chat client: its socket, unparsed bytes, and the texts it got."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.sock.sendall(UPGRADE)
        self.buf = b""
        self.upgraded = False
        self.texts = []

    def feed(self, data):
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            assert self.buf.startswith(b"HTTP/1.1 101"), self.buf[:40]
            self.buf, self.upgraded = self.buf[end + 4:], True
        while len(self.buf) >= 2:
            length, at = self.buf[1] & 0x7F, 2
            if length >= 126:
                raise SystemExit("syscalls.py: the load sends small messages only")
            if len(self.buf) < at + length:
                return
            if self.buf[0] & 0x0F == 1:
                self.texts.append(self.buf[at:at + length].decode())
            self.buf = self.buf[at + length:]


def pump(clients, done):
    """Reads every client until `done()` holds; fails after DEADLINE seconds."""
    sel = selectors.DefaultSelector()
    for c in clients:
        sel.register(c.sock, selectors.EVENT_READ, c)
    end = time.monotonic() + DEADLINE
    try:
        while not done():
            if time.monotonic() > end:
                raise SystemExit("syscalls.py: the messages did not all arrive in time")
            for key, _ in sel.select(1.0):
                data = key.data.sock.recv(1 << 16)
                if not data:
                    raise SystemExit("syscalls.py: the server closed a client")
                key.data.feed(data)
    finally:
        sel.close()


def messages(count):
    return [f"message {i:05d} " + "x" * 44 for i in range(count)]  # 64 bytes each


def send_load(sender, receivers, load, count):
    """Sends the messages, paced or in one burst, and waits until all are delivered."""
    texts = messages(count)
    everyone = receivers + [sender]
    before = len(receivers[0].texts)
    if load == "burst":
        sender.sock.sendall(b"".join(text_frame(t) for t in texts))
        pump(everyone, lambda: all(len(r.texts) >= before + count for r in receivers))
    else:
        for i, text in enumerate(texts):
            sender.sock.sendall(text_frame(text))
            pump(everyone, lambda: all(len(r.texts) >= before + i + 1 for r in receivers))
    for r in receivers:
        assert r.texts[before:] == texts, "a receiver missed or reordered a message"


def cpu_ns(pid):
    """CPU time the server's threads have run, in ns (/proc/PID/task/*/schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass  # the thread is gone
    return total


# ---- strace ----------------------------------------------------------------------------


def attach(pid, out_path):
    """strace -c on every thread of `pid`; returns once all are traced."""
    tracer = subprocess.Popen(["strace", "-f", "-c", "-qq", "-o", out_path, "-p", str(pid)],
                              stderr=subprocess.DEVNULL)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if all(traced(pid, tid) for tid in os.listdir(f"/proc/{pid}/task")):
            time.sleep(0.2)  # let the interrupted waits settle before counting starts to matter
            return tracer
        time.sleep(0.02)
    tracer.kill()
    raise SystemExit("syscalls.py: strace did not attach (ptrace allowed here?)")


def traced(pid, tid):
    try:
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            return any(line.startswith("TracerPid:") and line.split()[1] != "0" for line in f)
    except FileNotFoundError:
        return True  # the thread is gone


def detach(tracer):
    tracer.send_signal(signal.SIGINT)
    tracer.wait(10)


def parse_strace_summary(path):
    """strace -c's table -> {syscall: calls}."""
    calls = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) < 5 or not fields[0][0].isdigit() or fields[-1] == "total":
                continue
            calls[fields[-1]] = int(fields[3])
    return calls


# ---- one run, and the table ------------------------------------------------------------


def one_run(name, load, receivers_n, count, rep):
    tag = f"{name}-{load}-{rep}"
    proc, port = start_server(name, os.path.join(OUT_DIR, tag + ".log"))
    try:
        receivers = [Receiver(port) for _ in range(receivers_n)]
        sender = Receiver(port)
        pump(receivers + [sender], lambda: all(len(c.texts) >= 1 for c in receivers + [sender]))
        # First without strace, for the server's CPU time; then the same load, traced.
        cpu_before = cpu_ns(proc.pid)
        send_load(sender, receivers, load, count)
        cpu = cpu_ns(proc.pid) - cpu_before
        out = os.path.join(OUT_DIR, tag + ".strace")
        tracer = attach(proc.pid, out)
        send_load(sender, receivers, load, count)
        detach(tracer)
        for c in receivers + [sender]:
            c.sock.close()
    finally:
        stop(proc)
    return parse_strace_summary(out), cpu


def figures(calls, cpu, count, receivers_n):
    """Per message (one broadcast to every receiver) and per delivery."""
    total = sum(calls.values())
    pick = lambda names: sum(calls.get(n, 0) for n in names)  # noqa: E731
    return {
        "syscalls/message": total / count,
        "syscalls/delivery": total / (count * receivers_n),
        "writes/message": pick(WRITES) / count,
        "reads/message": pick(READS) / count,
        "wake-ups/message": pick(WAKEUPS) / count,
        "epoll_ctl/message": calls.get("epoll_ctl", 0) / count,
        "other/message": (total - pick(WRITES) - pick(READS) - pick(WAKEUPS) - calls.get("epoll_ctl", 0)) / count,
        "CPU µs/delivery": cpu / 1000 / (count * receivers_n),
    }


def table(results, servers, loads, args):
    columns = list(next(iter(results.values())).keys())
    lines = [
        f"{args.receivers} receivers, {args.messages} messages of 64 bytes from one sender; "
        f"medians of {args.reps} runs; per message = per broadcast to all {args.receivers}. "
        "System calls counted by strace; CPU (all the server's threads, user and kernel) "
        "measured on the same load without strace, just before.",
        "",
        "| load | server | " + " | ".join(columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for load in loads:
        for name in servers:
            row = results[(name, load)]
            lines.append(f"| {load} | {name} | " + " | ".join(f"{row[c]:.2f}" for c in columns) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--servers", default="miochat tokio-ws node-ws")
    parser.add_argument("--loads", default="paced burst")
    args = parser.parse_args()
    os.makedirs(OUT_DIR, exist_ok=True)
    servers, loads = args.servers.split(), args.loads.split()
    results = {}
    for load in loads:
        for name in servers:
            runs = []
            for rep in range(1, args.reps + 1):
                print(f"[syscalls] {name} {load} run {rep}/{args.reps}", file=sys.stderr, flush=True)
                calls, cpu = one_run(name, load, args.receivers, args.messages, rep)
                runs.append(figures(calls, cpu, args.messages, args.receivers))
            results[(name, load)] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    text = table(results, servers, loads, args)
    with open(os.path.join(OUT_DIR, "syscalls.md"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
