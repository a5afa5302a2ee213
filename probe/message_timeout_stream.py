"""--message-timeout-ms is meant to bound one message from its first byte.
Session::track_unfinished sets `unfinished_since` when decoding stops inside
a frame and clears it only when decoding stops with nothing left over; a
client streaming many complete small messages, whose reads usually end
mid-frame, keeps the first timestamp forever and is failed with 1008
"message not finished in time" although every message took microseconds.

Run: python3 message_timeout_stream.py SECONDS RATE_KB_S [server flags...]
  One chat sender writes 1000-byte text messages at RATE_KB_S in writes of
  about 40 KiB that never end on a frame boundary (as any byte stream cut
  by TCP may); one reader drains.
"""
import sys, threading, time
from wslib import *

SECS = float(sys.argv[1]); RATE = float(sys.argv[2]) * 1000
srv = Server(*sys.argv[3:], log_name="message_timeout_stream.log")
S = Client(srv); S.recv_frame(5)
R = Client(srv); R.recv_frame(5)
stop = False
def drain(c):
    c.s.settimeout(0.5)
    while not stop:
        try:
            if not c.s.recv(1 << 20): return
        except socket.timeout: pass
        except OSError: return
threading.Thread(target=drain, args=(R,), daemon=True).start()
threading.Thread(target=drain, args=(S,), daemon=True).start()
stream = text(b"y" * 992) * 4096        # 1000-byte frames (992 + 8 header/mask)
T0 = time.time(); sent = 0; pos = 0; err = None
while time.time() - T0 < SECS:
    n = 40 * 1024
    if (pos + n) % 1000 == 0: n += 1      # never end a write on a frame boundary
    chunk = stream[pos:pos + n]
    if len(chunk) < n:                    # wrap: continue the stream seamlessly
        stream = stream[pos:] + text(b"y" * 992) * 4096; pos = 0; continue
    try: S.s.sendall(chunk)
    except OSError as e: err = (repr(e), round(time.time() - T0, 1)); break
    pos += n; sent += n
    time.sleep(max(0, T0 + sent / RATE - time.time()))
stop = True
lines = srv.log_lines()
report("streaming sender", seconds=round(time.time() - T0, 1), sent_mib=round(sent / 2**20, 1),
       send_error=err, messages_logged=get_status(srv)["last_id"],
       log=[l[11:] for l in lines if " left " in l][:2])
srv.stop()
