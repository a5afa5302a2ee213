"""Idle CPU after a v1 reader takes the log over its byte cap: History::prepare
sets `full_since` when making the v1 form pushes the log over --history-bytes,
with no sender paused; after --stall-ms the poll timeout is then 0 until some
chat client's input calls History::accepts.

Run: python3 idle_spin_v1.py [--leave]   (100 KB binary messages;
--silent: both stay connected and never send; use with --heartbeat-ms 10000;
--leave: both clients leave once the log is over its cap, and the CPU is sampled 50 s)
"""
import sys, threading, time
from wslib import *

srv = Server(*[a for a in sys.argv[1:] if a not in ("--leave", "--silent")], log_name="idle_spin_v1.log")
stop = False
got = [0]
def read_all(c):
    while not stop:
        try:
            f = c.recv_frame(timeout=0.5)
        except (socket.timeout, OSError):
            continue
        if f is None: return
        got[0] += 1
reader = Client(srv, v1=True)
t = threading.Thread(target=read_all, args=(reader,), daemon=True); t.start()
sender = Client(srv)
limit = 16 << 20
for i in range(400):
    sender.send(binary(os.urandom(random.randint(50_000, 150_000))))
    if i > 150 and i % 5 == 0:
        time.sleep(0.2)
        st = get_status(srv)
        if st["history"]["bytes"] > limit:
            break
time.sleep(0.5)
st = get_status(srv)
report("plain sender sent binary messages until the log read over its cap; one v1 reader, reading",
       messages_sent=i + 1, v1_frames_read=got[0], status=st)
if "--silent" in sys.argv:
    # both clients stay connected and never send (no pongs): the heartbeat
    # reaps them, which calls no accepts(); then nobody is connected at all
    stop = True
    cpu = []
    for _ in range(10):
        cpu.append(round(srv.cpu_percent(5.0), 1))
    report("clients silent, then reaped; server CPU % (5 s samples, 50 s)", cpu=cpu, status=get_status(srv))
    srv.stop()
    print("\n".join(l for l in srv.log_lines() if "left" in l))
    sys.exit(0)
if "--leave" in sys.argv:
    stop = True
    sender.close(); reader.close()
    time.sleep(0.5)
    cpu = [round(srv.cpu_percent(5.0), 1) for _ in range(10)]
    report("everyone left; server CPU % (5 s samples, 50 s)", cpu=cpu, status=get_status(srv))
    srv.stop(); sys.exit(0)
cpu = []
for _ in range(6):
    cpu.append(round(srv.cpu_percent(2.0), 1))
report("server CPU % while nobody sends (2 s samples, stall 5 s)", cpu=cpu)
reader_idle = srv.cpu_percent(2.0)
sender.send(frame(10, b""))   # any chat input (a pong) calls accepts()
time.sleep(0.3)
report("after one unsolicited pong from a chat client", cpu=round(srv.cpu_percent(2.0), 1),
       status=get_status(srv))
stop = True
sender.close(); reader.close()
time.sleep(0.3)
srv.stop()
