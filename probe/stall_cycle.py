"""One attacker, two connections at a time: a flooding sender (which reads
its own socket, so it is never a slow consumer) and a chat reader that never
reads. The reader fills the log and is dropped after --stall-ms; a fresh one
is connected each time, so the room is paused again and again: "a stuck
reader costs the room --stall-ms, once" holds per connection, not per
attacker. A polite pair measures message latency.

Run: python3 stall_cycle.py SECONDS [server flags...]
  env MSG=bytes per flood message (default 1000), CYCLE=seconds between fresh
  stuck readers (default 5.3)
"""
import statistics, sys, threading, time
from wslib import *

SECS = float(sys.argv[1]); MSG = int(os.environ.get("MSG", "1000")); CYCLE = float(os.environ.get("CYCLE", "5.3"))
srv = Server(*sys.argv[2:], log_name="stall_cycle.log")
A = Client(srv); B = Client(srv); A.recv_frame(5); B.recv_frame(5)
S = Client(srv); S.recv_frame(5)
stop = False
lat = []
T0 = time.time()
def polite():
    while not stop:
        t0 = time.time()
        tag = b"polite %f" % t0
        try:
            A.send(text(tag))
            while True:
                op, p = B.recv_frame(20)
                if p == tag: break
            lat.append((t0 - T0, time.time() - t0))
        except Exception as e:
            lat.append((t0 - T0, None))
        time.sleep(0.2)
def drain(c):
    c.s.settimeout(0.5)
    while not stop:
        try:
            if not c.s.recv(1 << 20): return
        except socket.timeout: pass
        except OSError: return
one = text(b"x" * MSG)
def flood():
    S.s.settimeout(0.5)
    blob = one * max(1, 65536 // len(one))
    while not stop:
        try: S.s.sendall(blob)
        except socket.timeout: pass
        except OSError: return
threading.Thread(target=polite, daemon=True).start()
threading.Thread(target=drain, args=(S,), daemon=True).start()
threading.Thread(target=drain, args=(A,), daemon=True).start()   # the polite sender reads too
threading.Thread(target=flood, daemon=True).start()
stuck = []
while time.time() - T0 < SECS:
    stuck.append(Client(srv, rcvbuf=4096))
    if len(stuck) > 2: stuck.pop(0).close()
    time.sleep(CYCLE)
stop = True
time.sleep(0.5)
ok = [l for t, l in lat if l is not None]
lines = srv.log_lines()
waits = [int(l.split(" waited ")[1].split()[0]) for l in lines if " waited " in l]
report("polite pair (a text every 200 ms)", samples=len(lat), lost=sum(1 for _, l in lat if l is None),
       timeline=[(round(t), round(l, 2)) for t, l in lat if l and l > 1][:15],
       median_s=round(statistics.median(ok), 3) if ok else None, p90_s=round(sorted(ok)[int(len(ok) * .9)], 3) if ok else None,
       max_s=round(max(ok), 3) if ok else None, over_1s=sum(1 for l in ok if l > 1))
report("server", pauses=len(waits), paused_total_s=round(sum(waits) / 1000, 1), of_s=round(time.time() - T0, 1),
       long_pauses_ms=[w for w in waits if w > 1000][:12], slow_consumers=sum("slow consumer" in l for l in lines),
       log_lines=len(lines), peak=srv.peak())
for c in stuck + [A, B, S]: c.close()
srv.stop()
