"""A chat reader sends a Close while a 1 MiB log frame is half-written to it.
The server must finish that frame, then send its Close, and nothing else; and
it must do so whether the reader then reads (case a) or not (case b: the
connection must still go within --close-timeout-ms).

Run: python3 close_midframe.py [server flags...]
"""
import sys, threading, time
from wslib import *

srv = Server(*sys.argv[1:], log_name="close_midframe.log")
S = Client(srv); S.recv_frame(5)
def drain(c):
    c.s.settimeout(0.5)
    while True:
        try:
            if not c.s.recv(1 << 20): return
        except socket.timeout: pass
        except OSError: return
threading.Thread(target=drain, args=(S,), daemon=True).start()
out = {}
for case in ("a", "b"):
    R = Client(srv, rcvbuf=65536); R.recv_frame(5)
    for i in range(3): S.send(binary(bytes([i]) * 1_000_000))
    time.sleep(0.3)
    first = R.s.recv(100_000)       # part of the first log frame
    R.send(close(1000, b"bye"))
    t0 = time.time()
    if case == "a":
        data = bytearray(first); R.s.settimeout(10)
        while True:
            try: d = R.s.recv(1 << 20)
            except (socket.timeout, ConnectionResetError) as e: out["a_error"] = repr(e); break
            if not d: break
            data += d
        frames = []; pos = 0
        while True:
            f = parse_frame(data, pos)
            if not f: break
            frames.append((f[0], len(f[1]), f[1][:2].hex() if f[0] == 8 else f[1][:1].hex())); pos += f[2]
        out["a_frames_after_close"] = frames
        out["a_trailing_bytes"] = len(data) - pos
        out["a_eof_after_s"] = round(time.time() - t0, 2)
    else:
        # never read again; does the server let go?
        def server_side():
            o = subprocess.run(["ss", "-tnH", "state", "established", f"( sport = :{srv.port} )"], capture_output=True, text=True).stdout
            return len(o.splitlines())
        out["b_server_sockets_at_close"] = server_side()
        while time.time() - t0 < 10:
            if server_side() <= 1: break    # only S left
            time.sleep(0.2)
        out["b_gone_after_s"] = round(time.time() - t0, 2)
        out["b_status"] = get_status(srv)
        R.close()
lines = srv.log_lines()
report("close mid-frame", **out, log=[l[20:] for l in lines if " left " in l][-3:])
srv.stop()
