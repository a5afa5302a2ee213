"""The input budget counts read-buffer *capacity*, and the server reserves
room for a whole frame as soon as its header arrives (compact_read_buf:
reserve_exact). N connections that each send only the 14-byte header of a
1 MiB binary frame are charged 1 MiB each (no page is touched: RSS does
not move). With the total just under --max-input-bytes, every other client
whose message arrives in more than one read (here: a 300 KB message) is
failed with 1009, until --message-timeout-ms (60 s) ends the attackers,
who can then open fresh connections.

Run: python3 input_budget_headers.py [N] [server flags...]   (N default 63;
  one more attacker's header is sized to leave 100 KB of the budget free)
"""
import sys, threading, time
from wslib import *

N = int(sys.argv[1]) if len(sys.argv) > 1 else 63
srv = Server(*sys.argv[2:], log_name="input_budget_headers.log")
rss0 = srv.status()["VmRSS"]
att = []
for i in range(N):
    c = Client(srv, path="/echo"); att.append(c)
    c.send(bytes([0x82, 0xFF]) + struct.pack(">Q", 1 << 20) + os.urandom(4))   # header only
# one more, sized so that what is charged ends 100 KB under the budget
budget = 64 << 20
if "--max-input-bytes" in sys.argv: budget = int(sys.argv[sys.argv.index("--max-input-bytes") + 1])
filler = budget - N * ((1 << 20) + 14) - 100_000 - 14
if filler > 200:
    c = Client(srv, path="/echo"); att.append(c)
    c.send(bytes([0x82, 0xFF]) + struct.pack(">Q", filler) + os.urandom(4))
time.sleep(0.5)
rss1 = srv.status()["VmRSS"]
res = []
for k in range(5):
    P = Client(srv, path="/echo")
    P.send(binary(os.urandom(300_000)))
    try:
        f = P.recv_frame(5)
        res.append("echoed" if f and f[0] == 2 else ("close %d %r" % (struct.unpack(">H", f[1][:2])[0], f[1][2:]) if f else "EOF"))
    except Exception as e:
        res.append(repr(e))
    P.close(); time.sleep(0.2)
R = Client(srv); R.recv_frame(5); W = Client(srv); W.recv_frame(5)
W.send(text(b"z" * 300_000))
try:
    W.s.settimeout(2)
    f = W.recv_frame(2)
    chat = "sender got close %d %r" % (struct.unpack(">H", f[1][:2])[0], f[1][2:]) if f and f[0] == 8 else repr(f)
except socket.timeout:
    try:
        f = R.recv_frame(2); chat = "delivered (%d bytes)" % len(f[1])
    except Exception as e: chat = "not delivered: " + repr(e)
lines = srv.log_lines()
report("header-only attackers", N=N, attacker_bytes_sent=N * 14, rss_mib_before=rss0 >> 20, rss_mib_after=rss1 >> 20,
       polite_echo_300KB=res, polite_chat_300KB=chat,
       log=[l[20:] for l in lines if "refused" in l][:2])
for c in att: c.close()
srv.stop()
