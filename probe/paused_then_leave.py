"""A polite chat client sends a message and then leaves (Close frame, or
just FIN) while chat senders are paused because a stuck reader holds the
full log. Its message must still be delivered once the pause ends, and it
must not be counted as silent meanwhile.

Run: python3 paused_then_leave.py [server flags...]
"""
import sys, threading, time
from wslib import *

srv = Server(*sys.argv[1:], log_name="paused_then_leave.log")
stuck = Client(srv, rcvbuf=4096); stuck.recv_frame(5)
B = Client(srv); B.recv_frame(5)
S = Client(srv); S.recv_frame(5)
got = []; stop = False
def read_b():
    B.s.settimeout(0.5)
    while not stop:
        try: f = B.recv_frame()
        except socket.timeout: continue
        except OSError: return
        if f is None: return
        if f[1].startswith(b"last words"): got.append((f[1].decode(), round(time.time() - T0, 2)))
def drain(c):
    c.s.settimeout(0.5)
    while not stop:
        try:
            if not c.s.recv(1 << 20): return
        except socket.timeout: pass
        except OSError: return
threading.Thread(target=read_b, daemon=True).start()
threading.Thread(target=drain, args=(S,), daemon=True).start()
P1 = Client(srv); P1.recv_frame(5)
P2 = Client(srv); P2.recv_frame(5)
threading.Thread(target=drain, args=(P1,), daemon=True).start()   # good readers until they leave
threading.Thread(target=drain, args=(P2,), daemon=True).start()
m = binary(os.urandom(1_000_000))
for i in range(20): S.send(m)            # the log is full; stuck holds it
time.sleep(0.5)
T0 = time.time()
P1.send(text("last words (then Close)") + close(1000, b"bye")); 
P2.send(text("last words (then FIN)")); P2.s.shutdown(socket.SHUT_WR)
time.sleep(8)
stop = True
lines = srv.log_lines()
report("messages sent while paused, then left", delivered=got,
       log=[l[20:] for l in lines if "paused" in l or "resumed" in l or " left " in l][:6])
srv.stop()
