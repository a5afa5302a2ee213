"""miochat.v1 resume abuse: odd `since`/`epoch` values, and many resumers
racing with a flood that keeps evicting: every resumer must get either a
replay that starts right after `since` or exactly one reset, then contiguous
ids, never a gap, never a duplicate.

Run: python3 v1_resume.py RESUMERS [server flags...]   e.g. 200 --history-messages 2000
"""
import collections, sys, threading, time
from wslib import *

raise_nofile(20000)
N = int(sys.argv[1])
srv = Server(*sys.argv[2:], log_name="v1_resume.log")

def upgrade(query, v1=True):
    s = socket.create_connection(srv.addr, timeout=10)
    proto = "Sec-WebSocket-Protocol: miochat.v1\r\n" if v1 else ""
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /chat{query} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{proto}\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(65536)
        if not d: break
        data += d
    head, _, rest = data.partition(b"\r\n\r\n")
    return s, head.split(b"\r\n")[0].decode(), rest

def first_objects(s, rest, n=2, timeout=2):
    c = Client.__new__(Client); c.s = s; c.buf = bytearray(rest); c.pos = 0
    out = []
    try:
        for _ in range(n):
            f = c.recv_frame(timeout)
            if f is None: break
            out.append(json.loads(f[1]) if f[0] == 1 else f)
    except socket.timeout: pass
    return c, out

# some history
S = Client(srv); S.recv_frame(5)
for i in range(50): S.send(text(f"m{i}"))
time.sleep(0.3)
st = get_status(srv)
odd = {}
for q in ["?since=-1", "?since=abc", "?since=99999999999999999999999", "?since=18446744073709551615",
          "?since=%2B5", "?since=0", "?since=", "?since=10&epoch=nope", "?since=10&epoch=" + "e" * 6000,
          "?since=10&since=0", "?name=%22%5C%0A", "?name=%E2%80%AE", "?name=" + "%F0%9F%98%80" * 32,
          "?name=%FF%FE", "?name=guest-2"]:
    s, status, rest = upgrade(q)
    c, objs = first_objects(s, rest, 3, 0.5)
    odd[q[:40]] = (status.split(" ", 2)[1:], [o.get("type") + ("/" + str(o.get("name") or o.get("id") or o.get("last_id") or "")) if isinstance(o, dict) else o for o in objs])
    s.close()
s, status, rest = upgrade("?since=5", v1=False)
c, objs = first_objects(s, rest, 2, 0.5); s.close()
odd["plain ?since=5"] = (status.split(" ", 2)[1:], objs)
report("odd resume / name values", status=st, **{k: v for k, v in odd.items()})

# race: a flood evicts while N resumers ask for history near the oldest id
stop = False
def flood():
    S.s.settimeout(0.5); blob = text(b"f" * 200) * 256
    while not stop:
        try: S.s.sendall(blob)
        except socket.timeout: pass
        except OSError: return
def drain(c):
    c.s.settimeout(0.5)
    while not stop:
        try:
            if not c.s.recv(1 << 20): return
        except socket.timeout: pass
        except OSError: return
threading.Thread(target=drain, args=(S,), daemon=True).start()
threading.Thread(target=flood, daemon=True).start()
time.sleep(1)
results = collections.Counter(); problems = []
def resumer(k):
    st = get_status(srv)
    last = st["last_id"]; held = st["history"]["messages"]
    since = max(0, last - held + random.randint(-20, 20))     # near the oldest held id
    s, status, rest = upgrade(f"?since={since}")
    c, objs = first_objects(s, rest, 1, 5)
    expect = since + 1; reset = False; n = 0; t0 = time.time()
    try:
        while time.time() - t0 < 3:
            f = c.recv_frame(5)
            if f is None: break
            o = json.loads(f[1])
            if o["type"] == "reset":
                if reset or n: problems.append((k, "reset after data or twice")); break
                reset = True; expect = o["last_id"] + 1; continue
            if o["type"] == "message":
                if o["id"] != expect:
                    problems.append((k, f"since={since} expected {expect} got {o['id']}")); break
                expect += 1; n += 1
    except Exception as e:
        problems.append((k, repr(e)))
    results["reset" if reset else "replay"] += 1
    s.close()
ts = []
for k in range(N):
    t = threading.Thread(target=resumer, args=(k,), daemon=True); t.start(); ts.append(t)
    time.sleep(0.01)
for t in ts: t.join(30)
stop = True
lines = srv.log_lines()
report("resumers racing a flood", resumers=N, outcomes=dict(results), problems=problems[:8], n_problems=len(problems),
       peak=srv.peak(), panics=sum("panick" in l for l in lines),
       resume_log=[l[20:] for l in lines if "resumes" in l][:3])
srv.stop()
