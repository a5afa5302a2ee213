"""Chat clients that never read flood Pings (125-byte payloads): their Pongs
fill their own output; past --max-buffered-bytes they are no longer read, and
after --stall-ms they are dropped (1008). Measures server memory per client,
how long they last, and a polite pair's latency meanwhile.

Run: python3 ping_flood.py N MIB [server flags...]
"""
import statistics, sys, threading, time
from wslib import *

raise_nofile(20000)
N = int(sys.argv[1]); MIB = float(sys.argv[2])
srv = Server(*sys.argv[3:], log_name="ping_flood.log")
A = Client(srv); B = Client(srv); A.recv_frame(5); B.recv_frame(5)
stop = False; lat = []
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
        A.send(text(tag))
        try:
            while True:
                op, p = B.recv_frame(30)
                if p == tag: break
            lat.append(time.time() - t0)
        except Exception: lat.append(None)
        time.sleep(0.1)
threading.Thread(target=drain, args=(A,), daemon=True).start()
threading.Thread(target=polite, daemon=True).start()
one = ping(b"p" * 125)
blob = one * int(MIB * 2**20 / len(one))
fl = [Client(srv, rcvbuf=4096) for _ in range(N)]
T0 = time.time()
def pump(c):
    c.s.settimeout(8)
    try: c.s.sendall(blob)
    except OSError: pass
for i in range(0, N, 25):
    ts = [threading.Thread(target=pump, args=(c,), daemon=True) for c in fl[i:i + 25]]
    for t in ts: t.start()
    time.sleep(0.2)
time.sleep(1.5)
mid = srv.status()["VmRSS"]
time.sleep(6)
stop = True
lines = srv.log_lines()
ok = [l for l in lat if l is not None]
report("ping flood", N=N, mib_each=MIB, rss_mib_during=mid >> 20, per_client_kib=mid // N >> 10,
       peak=srv.peak(), dropped=sum("slow consumer" in l and " left " in l for l in lines),
       sample=[l[20:] for l in lines if " left " in l][:1],
       polite_max_s=round(max(ok), 3) if ok else None, polite_samples=len(lat))
srv.stop()
