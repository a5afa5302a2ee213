"""Shared helpers for the miochat probes: start the server, raw WebSocket
clients, and a watchdog that measures (and caps) what the server holds.

Every probe starts its own server on a free loopback port, with the binary
at ../target/release/miochat (relative to this file), and stops it at the end.
"""
import base64, json, os, random, select, socket, struct, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.path.join(HERE, "..", "target", "release", "miochat")
PAGE = 4096
CLK = os.sysconf("SC_CLK_TCK")

# Ceilings: a probe that passes one is stopped (the server is killed).
RSS_CEILING = 3 * 1024**3          # server VmRSS
TCP_PAGES_CEILING = 360_000        # /proc/net/sockstat TCP mem pages, machine-wide (others use it too; tcp_mem pressure is 383867)
OWN_SOCKET_CEILING = 1024 * 1024**2  # skmem of every socket on our port (server and client ends)
OWN_SHARE_AT_PRESSURE = 200 * 1024**2  # near machine pressure, stop if we hold this much of it

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

class Server:
    def __init__(self, *flags, log_name="server.log", rust_log="info"):
        self.port = free_port()
        self.addr = ("127.0.0.1", self.port)
        self.log_path = os.path.join(HERE, "logs", log_name)
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.log = open(self.log_path, "w")
        env = dict(os.environ, RUST_LOG=rust_log)
        self.proc = subprocess.Popen([BINARY, "--addr", f"127.0.0.1:{self.port}", *map(str, flags)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=lambda: os.setpgid(0, 0))
        self.pid = self.proc.pid
        for _ in range(200):
            try:
                socket.create_connection(self.addr, timeout=0.2).close(); break
            except OSError:
                time.sleep(0.02)
        self.samples = []
        self.tcp_base = self.tcp_pages()
        self.hwm = 0
        self._stop = False
        self.killed_for = None
        self._wd = threading.Thread(target=self._watch, daemon=True); self._wd.start()

    # ---- measurement ----
    def status(self):
        d = {}
        try:
            for line in open(f"/proc/{self.pid}/status"):
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    d[k] = int(v.split()[0]) * 1024
        except OSError:
            pass
        return d

    def cpu_seconds(self):
        try:
            f = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / CLK
        except OSError:
            return None

    @staticmethod
    def tcp_pages():
        for line in open("/proc/net/sockstat"):
            if line.startswith("TCP:"):
                parts = line.split()
                return int(parts[parts.index("mem") + 1])
        return 0

    def skmem(self, side="server"):
        """Kernel memory of the sockets on our port (ss -tm): side "server"
        (local port = server port), "client" (remote port = server port).
        rmem: receive queues, wmem: send queues (skmem r and t), bytes."""
        flt = f"( sport = :{self.port} )" if side == "server" else f"( dport = :{self.port} )"
        out = subprocess.run(["ss", "-tmnH", "state", "all", flt],
                             capture_output=True, text=True).stdout
        r = w = fw = n = 0
        for line in out.splitlines():
            if "skmem:(" in line:
                i = line.index("skmem:(") + 7
                for item in line[i:line.index(")", i)].split(","):
                    if item[:1] == "r" and item[1:].isdigit(): r += int(item[1:])
                    if item[:1] == "w" and item[1:].isdigit(): w += int(item[1:])
                    if item[:1] == "f" and item[1:].isdigit(): fw += int(item[1:])
                n += 1
        return {"sockets": n, "rmem_mib": round(r / 2**20, 1), "wqueued_mib": round(w / 2**20, 1),
                "bytes": r + w + fw}

    def cpu_percent(self, seconds):
        a = self.cpu_seconds(); time.sleep(seconds); b = self.cpu_seconds()
        return None if a is None or b is None else 100.0 * (b - a) / seconds

    def _watch(self):
        n = 0
        own = 0
        while not self._stop and self.proc.poll() is None:
            st = self.status(); tp = self.tcp_pages()
            if n % 3 == 0:
                own = self.skmem("server")["bytes"] + self.skmem("client")["bytes"]
            n += 1
            self.samples.append((time.time(), st.get("VmRSS", 0), tp, own))
            self.hwm = max(self.hwm, st.get("VmHWM", 0))
            near_pressure = tp > TCP_PAGES_CEILING and own > OWN_SHARE_AT_PRESSURE
            if st.get("VmRSS", 0) > RSS_CEILING or near_pressure or own > OWN_SOCKET_CEILING:
                self.killed_for = f"ceiling: rss={st.get('VmRSS',0)>>20} MiB tcp_pages={tp} own_sockets={own>>20} MiB"
                print("WATCHDOG:", self.killed_for, file=sys.stderr, flush=True)
                self.proc.kill()
                break
            time.sleep(0.1)

    def peak(self):
        rss = max((s[1] for s in self.samples), default=0)
        tcp = max((s[2] for s in self.samples), default=0)
        own = max((s[3] for s in self.samples), default=0)
        return {"rss_peak_mib": rss >> 20, "hwm_mib": self.hwm >> 20,
                "machine_tcp_mib_peak": tcp * PAGE >> 20, "machine_tcp_mib_at_start": self.tcp_base * PAGE >> 20,
                "own_sockets_mib_peak": own >> 20}

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self._stop = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try: self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill(); self.proc.wait()
        self.log.close()

    def log_lines(self):
        return open(self.log_path, errors="replace").read().splitlines()

# ---- frames ----
def frame(opcode, payload=b"", fin=True, mask=True):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126: hdr = bytes([b0, (0x80 if mask else 0) | n])
    elif n < 65536: hdr = bytes([b0, (0x80 if mask else 0) | 126]) + struct.pack(">H", n)
    else: hdr = bytes([b0, (0x80 if mask else 0) | 127]) + struct.pack(">Q", n)
    if not mask: return hdr + payload
    key = os.urandom(4) if n else b"\0\0\0\0"
    if n:
        # fast XOR via int arithmetic
        k = (key * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")
    return hdr + key + payload

def text(s): return frame(1, s.encode() if isinstance(s, str) else s)
def binary(b): return frame(2, b)
def ping(b=b""): return frame(9, b)
def close(code=1000, reason=b""): return frame(8, struct.pack(">H", code) + reason)

def request(path="/chat", port=8080, v1=False, extra=""):
    key = base64.b64encode(os.urandom(16)).decode()
    proto = "Sec-WebSocket-Protocol: miochat.v1\r\n" if v1 else ""
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"{proto}{extra}\r\n").encode()

class Client:
    """A raw WebSocket client. rcvbuf: SO_RCVBUF set before connect (a small one
    makes a non-reader hold less in its own kernel and stall sooner)."""
    def __init__(self, server, path="/chat", v1=False, rcvbuf=None, sndbuf=None, connect_only=False, timeout=10):
        self.s = socket.socket()
        if rcvbuf: self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf: self.s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.s.settimeout(timeout)
        self.s.connect(server.addr)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = server.port
        self.buf = b""
        self.status_line = None
        if not connect_only:
            self.s.sendall(request(path, server.port, v1))
            self.read_head()

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d: raise ConnectionError("closed during handshake: %r" % self.buf[:200])
            self.buf += d
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status_line = head.split(b"\r\n")[0].decode()
        self.head = head.decode(errors="replace")
        return self.status_line

    def send(self, data): self.s.sendall(data)

    def recv_frame(self, timeout=None):
        """Returns (opcode, payload) or None on EOF; raises socket.timeout."""
        if timeout is not None: self.s.settimeout(timeout)
        if not isinstance(self.buf, bytearray):
            self.buf = bytearray(self.buf); self.pos = 0
        while True:
            f = parse_frame(self.buf, self.pos)
            if f:
                op, payload, used = f
                self.pos += used
                if self.pos > (1 << 20) and self.pos * 2 > len(self.buf):
                    del self.buf[:self.pos]; self.pos = 0
                return op, payload
            d = self.s.recv(1 << 20)
            if not d: return None
            self.buf += d

    def close(self):
        try: self.s.close()
        except OSError: pass

def parse_frame(buf, pos=0):
    """One unmasked (server) frame at buf[pos:]: (opcode, payload, length) or None."""
    avail = len(buf) - pos
    if avail < 2: return None
    op = buf[pos] & 0x0F; n = buf[pos + 1] & 0x7F; i = 2
    if n == 126:
        if avail < 4: return None
        n = struct.unpack_from(">H", buf, pos + 2)[0]; i = 4
    elif n == 127:
        if avail < 10: return None
        n = struct.unpack_from(">Q", buf, pos + 2)[0]; i = 10
    if avail < i + n: return None
    return op, bytes(buf[pos + i:pos + i + n]), i + n

def raise_nofile(n=20000):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))

def report(title, **kv):
    print(f"== {title}")
    for k, v in kv.items():
        print(f"   {k}: {v}")
    sys.stdout.flush()

def get_status(server):
    s = socket.create_connection(server.addr, timeout=5)
    s.sendall(f"GET /status HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        d = s.recv(65536)
        if not d: break
        data += d
    s.close()
    body = data.partition(b"\r\n\r\n")[2]
    return json.loads(body)
