"""Many miochat.v1 clients resume from the oldest id at once, with a full
log (--history-bytes of 64 KiB binary messages), and read everything (or,
with STUCK=1, read nothing: SO_RCVBUF 4 KiB). Measures server CPU, polite
latency, pauses, and whether a polite sender gets through.

Run: python3 v1_replay_storm.py N [server flags...]   (env STUCK=0|1)
"""
import statistics, sys, threading, time
from wslib import *

raise_nofile(20000)
N = int(sys.argv[1]); STUCK = os.environ.get("STUCK") == "1"
srv = Server(*sys.argv[2:], log_name="v1_replay_storm.log")
S = Client(srv); S.recv_frame(5)
m = binary(os.urandom(65000))
for i in range(300): S.send(m)
time.sleep(1)
st = get_status(srv)
A = Client(srv); B = Client(srv); A.recv_frame(5); B.recv_frame(5)
stop = False; lat = []; T0 = time.time()
def drain(c, count=None):
    c.s.settimeout(0.5)
    while not stop:
        try:
            d = c.s.recv(1 << 20)
            if not d: return
            if count is not None: count[0] += len(d)
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
        time.sleep(0.2)
threading.Thread(target=drain, args=(S,), daemon=True).start()
threading.Thread(target=drain, args=(A,), daemon=True).start()
threading.Thread(target=polite, daemon=True).start()
since = st["last_id"] - st["history"]["messages"]
got = [0]
cpu0 = srv.cpu_seconds()
rs = []
for i in range(N):
    c = Client(srv, rcvbuf=4096 if STUCK else None, connect_only=True)
    c.s.sendall(request(f"/chat?since={since}", srv.port, v1=True)); rs.append(c)
if not STUCK:
    for c in rs: threading.Thread(target=drain, args=(c, got), daemon=True).start()
# while the replays run, S sends a message every 0.5 s
t_end = time.time() + 15
while time.time() < t_end:
    S.send(text(b"during the storm")); time.sleep(0.5)
stop = True; time.sleep(0.6)
cpu = srv.cpu_seconds() - cpu0
ok = [l for l in lat if l is not None]
lines = srv.log_lines()
waits = [int(l.split(" waited ")[1].split()[0]) for l in lines if " waited " in l]
report("replay storm", resumers=N, stuck=STUCK, log_at_start=st["history"], replayed_mib=got[0] >> 20,
       server_cpu_s=round(cpu, 1), peak=srv.peak(),
       polite_samples=len(lat), polite_median_s=round(statistics.median(ok), 3) if ok else None,
       polite_max_s=round(max(ok), 2) if ok else None, pauses=len(waits), paused_s=round(sum(waits) / 1000, 1),
       slow_consumers=sum("slow consumer" in l for l in lines))
for c in rs: c.close()
srv.stop()
