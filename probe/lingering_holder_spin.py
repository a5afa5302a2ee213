"""A reader that is no longer Open but still owes the rest of a log frame
(reader.offset > 0) keeps its place in the log; drop_stalled_readers only
drops Open readers. If it is the one holding the full log when --stall-ms
runs out, nobody is dropped, `full_since` stays, the poll timeout is 0, and
the loop spins until its --close-timeout-ms ends it.

Here it leaves Open by --message-timeout-ms (its own unfinished message), a
timer that fires whatever its input hold.

Run: python3 lingering_holder_spin.py [server flags...]
  suggested: --message-timeout-ms 3000 (stall and close timeout default 5000)
"""
import sys, threading, time
from wslib import *

srv = Server(*sys.argv[1:], log_name="lingering_holder_spin.log")
S = Client(srv); S.recv_frame(5)
R = Client(srv, rcvbuf=4096); R.recv_frame(5)
R.send(bytes([0x82, 0x85]))            # the first 2 bytes of a frame, never finished
stop = False
def drain(c):
    c.s.settimeout(0.5)
    while not stop:
        try:
            if not c.s.recv(1 << 20): return
        except socket.timeout: pass
        except OSError: return
threading.Thread(target=drain, args=(S,), daemon=True).start()
m = binary(os.urandom(1_000_000))
for i in range(20): S.send(m)           # fills the 16 MiB log; R is mid-frame
T0 = time.time()
cpu = []
while time.time() - T0 < 14:
    cpu.append((round(time.time() - T0, 1), round(srv.cpu_percent(1.0))))
stop = True
lines = srv.log_lines()
report("CPU % per second after the log filled", cpu=cpu,
       log=[l[11:] for l in lines if "paused" in l or "resumed" in l or "slow" in l or " left " in l])
srv.stop()
