"""The global input budget (--max-input-bytes) counts read_buf *capacity*,
including bytes already decoded that stay in the buffer of a connection whose
input is held (OutputFull on /echo, LogFull on chat). Such a connection is not
mid-message, so it never gets the 1009 that guards the budget; enough of them
take the total over the budget, and then *nobody* is read: polite chat
messages and new handshakes wait until the holders are dropped (--stall-ms).
In waves, the server stays deaf.

Run: python3 input_budget_deaf.py N WAVES [server flags...]
  Each wave: N /echo clients (SO_RCVBUF 4 KiB, never read) each send
  FRAMES_MIB (env, default 2) MiB of 1024-byte frames at once (1024 divides
  the server's 64 KiB reads, so a read never ends mid-frame and the
  connection is never "mid-message"). A new wave starts every 5 s; the wave connections are opened
  before the attack starts. A polite chat pair measures latency; a polite
  newcomer does a fresh upgrade every 0.5 s.
  env PATH_=/chat: the wave clients are chat senders instead (they read
  nothing either), so they are held because the log is full (LogFull), with
  up to 256 KiB of undecoded frames each.
"""
import sys, threading, time
from wslib import *

raise_nofile(20000)
N = int(sys.argv[1]); WAVES = int(sys.argv[2])
srv = Server(*sys.argv[3:], log_name="input_budget_deaf.log")
one = binary(os.urandom(1016)); assert len(one) == 1024
f = one * (int(float(os.environ.get("FRAMES_MIB", "2")) * 1024))
A = Client(srv); B = Client(srv); B.recv_frame(5); A.recv_frame(5)
PATH_ = os.environ.get("PATH_", "/echo")
waves = [[Client(srv, path=PATH_, rcvbuf=4096) for _ in range(N)] for _ in range(WAVES)]
lat = []; newcomer = []; stop = False
T0 = time.time()
def polite():
    while not stop:
        t0 = time.time()
        try:
            A.send(text("hi %f" % t0))
            while True:
                op, p = B.recv_frame(30)
                if p.startswith(b"hi "): break
            lat.append((round(t0 - T0, 1), round(time.time() - t0, 3)))
        except Exception as e:
            lat.append((round(t0 - T0, 1), type(e).__name__))
        time.sleep(0.1)
def newcomers():
    while not stop:
        t0 = time.time()
        try:
            c = Client(srv, timeout=30); st = c.status_line.split()[1]; c.close()
        except Exception as e:
            st = type(e).__name__
        newcomer.append((round(t0 - T0, 1), st, round(time.time() - t0, 2)))
        time.sleep(0.5)
def pump(c):
    try:
        c.s.settimeout(10); c.send(f)
    except Exception: pass
def drain(c):
    c.s.settimeout(0.5)
    while not stop:
        try:
            if not c.s.recv(1 << 20): return
        except socket.timeout: pass
        except OSError: return
threading.Thread(target=drain, args=(A,), daemon=True).start()   # the polite sender reads too
threading.Thread(target=polite, daemon=True).start()
threading.Thread(target=newcomers, daemon=True).start()
time.sleep(1)
for w in waves:
    for c in w: threading.Thread(target=pump, args=(c,), daemon=True).start()
    time.sleep(5)
time.sleep(6)
stop = True
time.sleep(1)
slow = [x for x in lat if isinstance(x[1], float) and x[1] > 1.0]
report("polite chat pair (send every 100 ms)", samples=len(lat),
       max_latency_s=max((x[1] for x in lat if isinstance(x[1], float)), default=None),
       over_1s=len(slow), timeline_over_1s=slow[:12])
report("polite newcomer (fresh upgrade every 0.5 s): (t, status, seconds)", slow=[x for x in newcomer if x[2] > 1.0 or x[1] != "101"][:12], total=len(newcomer))
lines = srv.log_lines()
report("server", peak=srv.peak(), slow_consumer=sum("slow consumer" in l for l in lines),
       e1009=sum("1009" in l for l in lines), budget_lines=[l for l in lines if "budget" in l][:2])
srv.stop()
