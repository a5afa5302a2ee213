"""Senders paused because the log is full are not read: their bytes wait in
the server's kernel receive queue. SO_SNDBUF is fixed per connection
(--send-buffer-bytes) but SO_RCVBUF is not: it autotunes up to tcp_rmem[2]
(here 32 MiB) while the server reads fast, and a paused sender then makes the
kernel hold that much, per sender, for as long as the pause lasts.

Run: python3 paused_sender_kernel.py N [server flags...]
  N chat senders push 64 KiB binary messages as fast as they are taken (and
  drain their own sockets, so they are good readers); one reader reads for
  WARM seconds (env, default 3) then stops reading, which fills the log and
  pauses the senders. Server-side receive queues are measured just before
  --stall-ms ends the pause.
"""
import sys, threading, time
from wslib import *

raise_nofile(20000)
N = int(sys.argv[1]); WARM = float(os.environ.get("WARM", "3"))
srv = Server(*sys.argv[2:], log_name="paused_sender_kernel.log")
stuck = Client(srv, rcvbuf=1 << 20)
m = binary(os.urandom(64 * 1024 - 8))
blob = m * 16       # 1 MiB per send call
senders = [Client(srv, sndbuf=8 << 20) for _ in range(N)]
stop = False
def drain(c):
    c.s.settimeout(0.5)
    while not stop:
        try:
            if not c.s.recv(1 << 20): return
        except socket.timeout: pass
        except OSError: return
def pump(c):
    c.s.settimeout(0.5)
    while not stop:
        try: c.s.sendall(blob)
        except socket.timeout: pass
        except OSError: return
reader_stop = [False]
def stuck_reader():
    stuck.s.settimeout(0.5)
    while not reader_stop[0]:
        try: stuck.s.recv(1 << 20)
        except socket.timeout: pass
for c in senders:
    threading.Thread(target=drain, args=(c,), daemon=True).start()
    threading.Thread(target=pump, args=(c,), daemon=True).start()
threading.Thread(target=stuck_reader, daemon=True).start()
time.sleep(WARM)
reader_stop[0] = True
T = time.time()
best = None
while time.time() - T < 4.5:
    k = srv.skmem("server")
    if best is None or k["rmem_mib"] > best["rmem_mib"]: best = k
    time.sleep(0.3)
out = subprocess.run(["ss", "-tmnH", f"( sport = :{srv.port} )"], capture_output=True, text=True).stdout
rbs = sorted(int(x[2:]) for x in out.replace("(", ",").replace(")", ",").split(",") if x.startswith("rb") and x[2:].isdigit())
report("the stuck reader stopped; senders paused (max over 4.5 s)", N=N, server_rmem_mib=best["rmem_mib"],
       per_sender_mib=round(best["rmem_mib"] / N, 1), server_rcvbuf_bytes_top=rbs[-N:],
       rss_mib=srv.status()["VmRSS"] >> 20, status=get_status(srv))
time.sleep(2)
stop = True
lines = srv.log_lines()
report("end", peak=srv.peak(), log=[l[20:] for l in lines if "paused" in l or "slow" in l or "resumed" in l][:6])
for c in senders: c.close()
stuck.close(); srv.stop()
