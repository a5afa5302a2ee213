"""An /echo client that never reads, sends one message just under
--max-buffered-bytes + the kernel's share, and then only an unsolicited Pong
now and then: its reply stays queued (under --max-buffered-bytes, so never a
stall) for as long as it lives; the heartbeat sees its pongs. N of them hold
N x ~1 MiB of server memory (plus N x SO_SNDBUF in the kernel) indefinitely:
there is no total for output.

Run: python3 echo_hold_forever.py N SECONDS [server flags...]
  e.g. python3 echo_hold_forever.py 1000 40 --heartbeat-ms 5000
"""
import sys, threading, time
from wslib import *

raise_nofile(20000)
N = int(sys.argv[1]); SECS = float(sys.argv[2])
srv = Server(*sys.argv[3:], log_name="echo_hold_forever.log")
f = binary(os.urandom(1_000_000))
clients = []
T0 = time.time()
for i in range(N):
    clients.append(Client(srv, path="/echo", rcvbuf=4096))
for i in range(0, N, 40):
    for c in clients[i:i + 40]: c.send(f)
    time.sleep(0.3)
time.sleep(1)
after = srv.status()
report("after the uploads", N=N, rss_mib=after["VmRSS"] >> 20,
       per_client_kib=after["VmRSS"] // N >> 10, server_kernel=srv.skmem("server"))
samples = []
while time.time() - T0 < SECS:
    for c in clients:
        try: c.send(frame(10, b""))   # unsolicited pong: proves liveness
        except OSError: pass
    cpu = srv.cpu_percent(2.0)
    samples.append((round(time.time() - T0), srv.status().get("VmRSS", 0) >> 20, round(cpu)))
lines = srv.log_lines()
report("held: (t, RSS MiB, server CPU %)", timeline=samples[::3], left=sum(" left " in l for l in lines),
       peak=srv.peak(), server_kernel=srv.skmem("server"))
for c in clients: c.close()
srv.stop()
