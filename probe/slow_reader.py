"""A chat reader that reads at RATE bytes/s (SO_RCVBUF 4 KiB) while another
client floods. RATE=1: a trickle reader, dropped once. RATE just above a
quarter of the log per --stall-ms (10000 messages x 1000 bytes: 2500
messages per 5 s, about 500 KB/s): never dropped, never logged as slow, and
the room goes at its pace, paused most of the time, for as long as it likes.
A polite pair measures latency.

Run: python3 slow_reader.py RATE SECONDS [server flags...]   (env MSG=1000)
"""
import statistics, sys, threading, time
from wslib import *

RATE = float(sys.argv[1]); SECS = float(sys.argv[2]); MSG = int(os.environ.get("MSG", "1000"))
srv = Server(*sys.argv[3:], log_name="slow_reader.log")
A = Client(srv); B = Client(srv); S = Client(srv)
slow = Client(srv, rcvbuf=4096 if RATE < 65536 else 65536)
stop = False; lat = []; T0 = time.time(); slow_read = [0]; slow_end = [None]
def drain(c):
    c.s.settimeout(0.5)
    while not stop:
        try:
            if not c.s.recv(1 << 20): return
        except socket.timeout: pass
        except OSError: return
def polite():
    while not stop:
        t0 = time.time(); tag = b"polite %f" % t0
        try:
            A.send(text(tag))
            while True:
                op, p = B.recv_frame(20)
                if p == tag: break
            lat.append((t0 - T0, time.time() - t0))
        except Exception:
            lat.append((t0 - T0, None))
        time.sleep(0.2)
def flood():
    blob = text(b"x" * MSG) * max(1, 65536 // (MSG + 8))
    S.s.settimeout(0.5)
    while not stop:
        try: S.s.sendall(blob)
        except socket.timeout: pass
        except OSError: return
def reader():
    slow.s.settimeout(0.5)
    start = time.time()
    while not stop:
        t = time.time()
        allowed = int(RATE * (t - start)) + 1 - slow_read[0]   # token bucket
        if allowed <= 0:
            time.sleep(0.01); continue
        try:
            d = slow.s.recv(min(allowed, 1 << 20))
            if not d: slow_end[0] = ("EOF", round(t - T0, 1)); return
            slow_read[0] += len(d)
        except socket.timeout: pass
        except OSError as e:
            slow_end[0] = (type(e).__name__, round(t - T0, 1)); return
for f in (polite, flood, reader): threading.Thread(target=f, daemon=True).start()
threading.Thread(target=drain, args=(S,), daemon=True).start()
threading.Thread(target=drain, args=(A,), daemon=True).start()
time.sleep(SECS)
stop = True; time.sleep(0.6)
ok = [l for t, l in lat if l is not None]
lines = srv.log_lines()
waits = [int(l.split(" waited ")[1].split()[0]) for l in lines if " waited " in l]
report("slow reader", rate_bytes_s=RATE, read_bytes=slow_read[0], ended=slow_end[0],
       dropped_lines=[l[20:] for l in lines if "slow consumer" in l][:3])
report("room", polite_samples=len(lat), polite_median_s=round(statistics.median(ok), 3) if ok else None,
       polite_max_s=round(max(ok), 2) if ok else None, over_1s=sum(l > 1 for l in ok),
       pauses=len(waits), paused_total_s=round(sum(waits) / 1000, 1), of_s=SECS, peak=srv.peak())
srv.stop()
