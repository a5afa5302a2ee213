"""Output held for /echo clients that do not read is bounded per connection
(--max-buffered-bytes plus one message) but not in total: N such clients make
the server hold about N x (max-buffered + max-message + read buffer) for
--stall-ms. Input is capped for all connections together (--max-input-bytes);
output is not.

Run: python3 echo_output_memory.py N [MIB] [server flags...]
  N echo clients (SO_RCVBUF 4 KiB, never read), each sends MIB (default 1.4)
  MiB of 1024-byte binary frames and nothing more: the server decodes all of
  it (so it holds no input and nobody gets 1009), its echo fills the output
  queue past --max-buffered-bytes. A polite chat pair measures latency.
"""
import sys, threading, time
from wslib import *

raise_nofile(20000)
N = int(sys.argv[1]); MIB = float(sys.argv[2]) if len(sys.argv) > 2 else 1.4
srv = Server(*sys.argv[3:], log_name="echo_output_memory.log")
one = binary(os.urandom(1016)); assert len(one) == 1024
f = one * int(MIB * 1024)
base_rss = srv.status()["VmRSS"]

# polite chat pair: A sends a short text every 100 ms, B measures delay
A = Client(srv); B = Client(srv)
B.recv_frame(5); A.recv_frame(5)
lat = []; stop = False
def polite():
    while not stop:
        t0 = time.time()
        try:
            A.send(text("hi %f" % t0))
            while True:
                op, p = B.recv_frame(15)
                if p.startswith(b"hi "): break
            lat.append(round(time.time() - t0, 3))
        except Exception as e:
            lat.append(type(e).__name__)
        time.sleep(0.1)
tp = threading.Thread(target=polite, daemon=True); tp.start()

clients = []
t0 = time.time()
for i in range(N):
    c = Client(srv, path="/echo", rcvbuf=4096)
    clients.append(c)
def pump(c):
    try:
        c.s.settimeout(30)
        c.send(f)
    except Exception: pass
# in batches of 50, so what is in flight in the kernel (client send queues,
# server receive queues) stays small: the server's own memory is measured
for i in range(0, N, 50):
    threads = [threading.Thread(target=pump, args=(c,), daemon=True) for c in clients[i:i + 50]]
    for t in threads: t.start()
    for t in threads: t.join(60)
    time.sleep(0.15)
    if os.environ.get("VERBOSE"):
        print(i + 50, "rss", srv.status().get("VmRSS", 0) >> 20, "server", srv.skmem("server"), "client", srv.skmem("client"), flush=True)
sent_s = time.time() - t0
time.sleep(1)
snap = srv.status()
report("after the uploads", N=N, mib_each=MIB, upload_s=round(sent_s, 1),
       rss_mib=snap["VmRSS"] >> 20, base_rss_mib=base_rss >> 20,
       per_client_kib=(snap["VmRSS"] - base_rss) // max(N, 1) >> 10,
       server_sockets=srv.skmem("server"))
time.sleep(6)
report("after --stall-ms", rss_mib=srv.status()["VmRSS"] >> 20, peak=srv.peak(),
       polite_latency_max=max((x for x in lat if isinstance(x, float)), default=None),
       polite_errors=[x for x in lat if not isinstance(x, float)][:3], polite_samples=len(lat))
stop = True
for c in clients: c.close()
lines = srv.log_lines()
report("log", slow=sum("slow consumer" in l for l in lines), sample=[l for l in lines if "Echo" in l and "left" in l][:2])
srv.stop()
