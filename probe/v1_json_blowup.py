"""The miochat.v1 form of a text message escapes control characters as
\\u00XX (6 bytes each, one format! call each): a 1 MiB text of U+0001 becomes
a 6 MiB JSON frame, made in the loop, when a v1 reader first needs it. The
log counts it only after it is made (History::prepare, 64 entries at a time).

Run: python3 v1_json_blowup.py COUNT [server flags...]
  One v1 reader (reading); one plain sender sends COUNT text messages of
  1,048,000 x U+0001 (valid UTF-8), then a polite pair measures latency.
  REPLAY=1: no v1 reader while the log fills; then one v1 client resumes
  from the oldest id, so one flush makes the v1 form of every entry at once (the
  polite pair shows how long the loop was blocked).
"""
import sys, threading, time
from wslib import *

COUNT = int(sys.argv[1])
srv = Server(*sys.argv[2:], log_name="v1_json_blowup.log")
stop = False; got = [0, 0]
def read_all(c):
    c.s.settimeout(0.5)
    while not stop:
        try: f = c.recv_frame()
        except socket.timeout: continue
        except OSError: return
        if f is None: return
        got[0] += 1; got[1] += len(f[1])
REPLAY = os.environ.get("REPLAY") == "1"
if not REPLAY:
    R = Client(srv, v1=True)
    threading.Thread(target=read_all, args=(R,), daemon=True).start()
S = Client(srv)
A = Client(srv); B = Client(srv); B.recv_frame(5); A.recv_frame(5)
def drain(c):
    c.s.settimeout(0.5)
    while not stop:
        try:
            if not c.s.recv(1 << 20): return
        except socket.timeout: pass
        except OSError: return
threading.Thread(target=drain, args=(S,), daemon=True).start()
threading.Thread(target=drain, args=(A,), daemon=True).start()
lat = []
def polite():
    while not stop:
        t0 = time.time(); tag = b"polite %f" % t0
        A.send(text(tag))
        try:
            while True:
                op, p = B.recv_frame(30)
                if p == tag: break
            lat.append(round(time.time() - t0, 3))
        except Exception as e:
            lat.append(type(e).__name__)
        time.sleep(0.1)
threading.Thread(target=polite, daemon=True).start()
msg = text(b"\x01" * 1_048_000)
cpu0 = srv.cpu_seconds(); t0 = time.time()
for i in range(COUNT):
    S.send(msg)
time.sleep(1)
if REPLAY:
    time.sleep(2); lat.clear()
    cpu0 = srv.cpu_seconds(); t0 = time.time()
    R = Client(srv, v1=True, connect_only=True)
    st = get_status(srv); since = st["last_id"] - st["history"]["messages"]
    R.s.sendall(request(f"/chat?since={since}", srv.port, v1=True)); R.read_head()
    threading.Thread(target=read_all, args=(R,), daemon=True).start()
    time.sleep(3)
while True:
    c1 = srv.cpu_seconds(); time.sleep(1); c2 = srv.cpu_seconds()
    if c2 - c1 < 0.05 or time.time() - t0 > 100: break
stop = True
report("v1 reader", frames=got[0], bytes_mib=round(got[1] / 2**20, 1), per_message_mib=round(got[1] / 2**20 / max(1, got[0] - 1), 2))
report("server", cpu_s=round(c2 - cpu0, 2), cpu_ms_per_message=round((c2 - cpu0) * 1000 / COUNT), wall_s=round(time.time() - t0, 1),
       peak=srv.peak(), polite_max_latency_s=max((x for x in lat if isinstance(x, float)), default=None),
       polite_over_0_5s=sum(1 for x in lat if isinstance(x, float) and x > 0.5), polite_samples=len(lat))
srv.stop()
