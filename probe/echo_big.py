"""/echo with large messages (--max-message-bytes 16 MiB): clients that send
one 16 MiB message each and never read. Once its reply is queued the
connection's input is held (OutputFull) and its read buffer, already
decoded, keeps its 16 MiB capacity, which counts against
--max-input-bytes: a handful of them take the total over the budget and then
no connection at all is read until --stall-ms drops them.

Run: python3 echo_big.py N [server flags...]
  e.g. python3 echo_big.py 6 --max-message-bytes 16777216
"""
import statistics, sys, threading, time
from wslib import *

N = int(sys.argv[1])
srv = Server(*sys.argv[2:], log_name="echo_big.log")
A = Client(srv); B = Client(srv); A.recv_frame(5); B.recv_frame(5)
stop = False; lat = []; newcomer = []; T0 = time.time()
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
            lat.append((round(t0 - T0, 1), round(time.time() - t0, 2)))
        except Exception as e: lat.append((round(t0 - T0, 1), repr(e)))
        time.sleep(0.1)
def newcomers():
    while not stop:
        t0 = time.time()
        try:
            c = Client(srv, timeout=30); st = c.status_line.split()[1]; c.close()
        except Exception as e: st = type(e).__name__
        newcomer.append((round(t0 - T0, 1), st, round(time.time() - t0, 2)))
        time.sleep(0.5)
threading.Thread(target=drain, args=(A,), daemon=True).start()
threading.Thread(target=polite, daemon=True).start()
threading.Thread(target=newcomers, daemon=True).start()
time.sleep(1)
big = binary(os.urandom(16 * 2**20 - 16))
cl = [Client(srv, path="/echo", rcvbuf=4096) for _ in range(N)]
for c in cl:
    c.s.settimeout(20)
    try: c.send(big)
    except OSError as e: print("send:", e)
    time.sleep(0.3)
time.sleep(8)
stop = True; time.sleep(0.5)
lines = srv.log_lines()
report("big echo", N=N, peak=srv.peak(),
       polite_slow=[x for x in lat if not isinstance(x[1], float) or x[1] > 1][:6],
       newcomer_slow=[x for x in newcomer if x[1] != "101" or x[2] > 1][:6],
       endings=[l[20:].split("left Echo: ")[1] for l in lines if "left Echo" in l][:N])
srv.stop()
