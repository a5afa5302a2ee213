#!/usr/bin/env python3
"""wsraw: a raw WebSocket client for learning, one byte at a time.

    python3 tools/wsraw.py HOST:PORT [OPTIONS] STEP [STEP ...]

It connects, runs the steps in order, and prints every byte it sends and
receives with what the bytes mean: the HTTP heads line by line, then each
frame (FIN, RSV, opcode, mask, length and its encoding, payload, close code
and reason) under its hex dump. After the last step it keeps printing what
arrives until the server closes the connection or --timeout passes quietly.

Steps (one argument each; quote those with spaces):

  head                  send the request head: by default an upgrade request
                        for --path (Host: HOST, a random key; see the options),
                        else the bytes of --head or --head-file
  head:pieces=N,pause=S the same head cut into N pieces, watching the socket
                        for S seconds (default 0.5) between two pieces
  text:STRING           a text frame (masked, FIN set), payload STRING
  binary:HEX            a binary frame, payload given in hex ("00ff10")
  ping[:STRING]         a ping, empty or with STRING as payload
  pong[:STRING]         a pong
  close[:CODE[:REASON]] a close frame: empty, with a code, or code and reason
  frame:KEY=VALUE,...   any frame at all; keys (all optional):
                          opcode=text|binary|cont|close|ping|pong|0..15 (text)
                          fin=1|0 (1)   rsv1=, rsv2=, rsv3=1|0 (0)
                          mask=1|0|HEX8 (1: --mask, or a random key)
                          len=7|16|64   length encoding (default: the shortest)
                          length=N      the length the header claims (default:
                                        the payload's; more than you send
                                        leaves the frame unfinished)
                          code=N, reason=TEXT   a close body
                          fill=N        N payload bytes "abc..xyz" repeated
                          hex=HEX       payload in hex
                          payload=TEXT  payload as text: last, takes the rest,
                                        commas and all
  raw:HEX               these bytes exactly, in one write ("81 05 48" or "810548")
  read[:N]              wait for N things (the response head, a frame), default 1
  wait:S                watch the socket for S seconds, printing what arrives
  sleep:S               do nothing for S seconds, reading nothing
  quit                  stop here: no final read, just close the socket

Exit status: 0 when every step ran; 1 when the connection failed, a read
timed out, or the server closed before the steps were done; 2 for a bad
command line.

Example (notes/03-framing.md):

  python3 tools/wsraw.py 127.0.0.1:8080 --path /echo head read \\
      frame:opcode=text,fin=0,payload=Hel ping frame:opcode=cont,payload=lo close:1000
"""

import argparse
import base64
import hashlib
import os
import socket
import sys
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
OPCODE_NAMES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
OPCODE_NUMBERS = {"cont": 0, "continuation": 0, "text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}
CLOSE_CODES = {  # RFC 6455 §7.4.1
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status code, never on the wire",
    1006: "closed abnormally, never on the wire",
    1007: "invalid payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
}
INDENT = "     "  # under "sent " and "got  "


class UsageError(Exception):
    """A step or option that cannot be understood: exit status 2."""


class Failure(Exception):
    """The connection failed, or a read timed out: exit status 1."""


# ---- the command line ----------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="wsraw.py",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("address", metavar="HOST:PORT")
    parser.add_argument("steps", metavar="STEP", nargs="+")
    parser.add_argument("--path", default="/", help="path of the upgrade request (default /)")
    parser.add_argument("--key", help="Sec-WebSocket-Key (default: 16 random bytes, base64)")
    parser.add_argument("--protocol", help="offer this subprotocol (Sec-WebSocket-Protocol)")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="add a header, or replace the default one of that name; 'NAME:' removes it",
    )
    parser.add_argument("--head", help="send this head instead (\\r and \\n written as escapes)")
    parser.add_argument("--head-file", help="send the bytes of this file as the head")
    parser.add_argument("--mask", metavar="HEX8", help="mask every frame with this key (default: random)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for a read (default 3)")
    parser.add_argument("--dump", type=int, default=64, help="hex-dump at most this many bytes a frame (default 64)")
    parser.add_argument("--reads", action="store_true", help="also print the size of every read")
    args = parser.parse_args(argv)
    host, _, port = args.address.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"HOST:PORT expected, got {args.address!r}")
    args.host, args.port = host, int(port)
    return args


def parse_hex(text):
    """'81 05 48' or '810548' -> bytes."""
    try:
        return bytes.fromhex(text.replace(" ", "").replace(":", ""))
    except ValueError:
        raise UsageError(f"not hex bytes: {text!r}")


def parse_number(text, what):
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise UsageError(f"{what}: not a number: {text!r}")


# ---- what we send: the head ----------------------------------------------------------


def default_headers(args):
    """The upgrade request's headers, in order, as [name, value] pairs (RFC 6455 §4.1)."""
    key = args.key or base64.b64encode(os.urandom(16)).decode()
    headers = [
        ["Host", args.host],  # without the port, as notes/two_clients.py sends it
        ["Upgrade", "websocket"],
        ["Connection", "Upgrade"],
        ["Sec-WebSocket-Key", key],
        ["Sec-WebSocket-Version", "13"],
    ]
    if args.protocol:
        headers.append(["Sec-WebSocket-Protocol", args.protocol])
    return headers


def apply_header_options(headers, options):
    """--header 'Name: value' replaces a default header, adds a new one, or ('Name:') removes it."""
    for option in options:
        name, colon, value = option.partition(":")
        if not colon:
            raise UsageError(f"--header wants 'Name: value', got {option!r}")
        name, value = name.strip(), value.strip()
        same = [h for h in headers if h[0].lower() == name.lower()]
        if not value:
            headers[:] = [h for h in headers if h[0].lower() != name.lower()]
        elif same:
            same[0][1] = value
        else:
            headers.append([name, value])
    return headers


def request_head(args):
    """The bytes of the head to send: --head-file, --head, or the upgrade request."""
    if args.head_file:
        with open(args.head_file, "rb") as f:
            return f.read()
    if args.head:
        return args.head.encode().decode("unicode_escape").encode("latin-1")
    headers = apply_header_options(default_headers(args), args.header)
    lines = [f"GET {args.path} HTTP/1.1"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def header_value(head, wanted):
    """The value of a header in a head, its name in any case (HTTP allows any), or None."""
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == wanted.lower():
            return value.strip()
    return None


def accept_for(key):
    """RFC 6455 §4.2.2: base64(SHA-1(key + GUID)), the key taken as text."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


# ---- what we send: frames ------------------------------------------------------------


def frame_step(kind, value):
    """A frame step (text:, binary:, ping, pong, close, frame:) -> the fields of one frame."""
    if kind == "text":
        return {"opcode": 1, "payload": value.encode()}
    if kind == "binary":
        return {"opcode": 2, "payload": parse_hex(value)}
    if kind in ("ping", "pong"):
        return {"opcode": OPCODE_NUMBERS[kind], "payload": value.encode()}
    if kind == "close":
        code, _, reason = value.partition(":")
        return {"opcode": 8, "payload": close_body(code, reason)}
    return frame_fields(value)


def close_body(code, reason):
    """A close frame's body (§5.5.1): empty, or a 2-byte code and a UTF-8 reason."""
    if not code:
        return b""
    number = int(parse_number(code, "close code"))
    if not 0 <= number < 1 << 16:
        raise UsageError("a close code is 2 bytes: 0 to 65535")
    return number.to_bytes(2, "big") + reason.encode()


def frame_fields(spec):
    """'opcode=1,fin=0,payload=hel' -> the fields; payload= takes the rest of the text."""
    fields = {"opcode": 1, "payload": b""}
    rest = spec
    while rest:
        item, _, rest = rest.partition(",")
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"frame: {item!r} is not KEY=VALUE")
        if key == "payload":
            fields["payload"] = (value + ("," + rest if rest else "")).encode()
            break
        set_frame_field(fields, key, value)
    if "code" in fields:
        fields["payload"] = close_body(str(fields.pop("code")), fields.pop("reason", ""))
    return fields


def set_frame_field(fields, key, value):
    if key == "opcode":
        fields["opcode"] = OPCODE_NUMBERS.get(value)
        if fields["opcode"] is None:
            fields["opcode"] = int(parse_number(value, "opcode"))
        if not 0 <= fields["opcode"] <= 15:
            raise UsageError("an opcode is 4 bits: 0 to 15")
    elif key in ("fin", "rsv1", "rsv2", "rsv3"):
        if value not in ("0", "1"):
            raise UsageError(f"{key}= is one bit: 0 or 1")
        fields[key] = int(value)
    elif key == "length":
        fields["length"] = int(parse_number(value, key))
    elif key == "len":
        if value not in ("7", "16", "64"):
            raise UsageError("len= is 7, 16 or 64")
        fields["len"] = int(value)
    elif key == "mask":
        fields["mask"] = value
    elif key == "code":
        fields["code"] = value
    elif key == "reason":
        fields["reason"] = value
    elif key == "fill":
        n = int(parse_number(value, "fill"))
        fields["payload"] = bytes(97 + i % 26 for i in range(n))
    elif key == "hex":
        fields["payload"] = parse_hex(value)
    else:
        raise UsageError(f"frame: unknown key {key!r}")


def mask_key_for(fields, default_mask):
    """The 4-byte key, or None for an unmasked frame (mask=0)."""
    mask = fields.get("mask", "1")
    if mask == "0":
        return None
    if mask == "1":
        return default_mask or os.urandom(4)
    key = parse_hex(mask)
    if len(key) != 4:
        raise UsageError("a masking key is 4 bytes: 8 hex digits")
    return key


def encode_frame(fields, mask_key):
    """RFC 6455 §5.2, with every choice left to the caller, even the wrong ones."""
    payload = fields["payload"]
    length = fields.get("length", len(payload))
    byte0 = (fields.get("fin", 1) << 7) | (fields.get("rsv1", 0) << 6)
    byte0 |= (fields.get("rsv2", 0) << 5) | (fields.get("rsv3", 0) << 4) | fields["opcode"]
    form = fields.get("len") or (7 if length < 126 else 16 if length < 65536 else 64)
    if not 0 <= length < {7: 126, 16: 1 << 16, 64: 1 << 64}[form]:
        raise UsageError(f"length {length} does not fit the {form}-bit form")
    mask_bit = 0x80 if mask_key else 0
    if form == 7:
        header = bytes([byte0, mask_bit | length])
    elif form == 16:
        header = bytes([byte0, mask_bit | 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([byte0, mask_bit | 127]) + length.to_bytes(8, "big")
    if mask_key:
        return header + mask_key + apply_mask(payload, mask_key)
    return header + payload


def apply_mask(payload, key):
    """§5.3: byte i XOR key byte i % 4 (masking and unmasking are the same)."""
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


# ---- what we receive: decoding -------------------------------------------------------


def parse_frame(buf):
    """One frame from the front of buf -> (fields, size, masking key or None), or None until it is whole."""
    if len(buf) < 2:
        return None
    length, at = buf[1] & 0x7F, 2
    form = 7
    if length == 126:
        form, at = 16, 4
    elif length == 127:
        form, at = 64, 10
    if len(buf) < at:
        return None
    if form != 7:
        length = int.from_bytes(buf[2:at], "big")
    key = buf[at : at + 4] if buf[1] & 0x80 else None
    at += 4 if key else 0
    if len(buf) < at + length:
        return None
    payload = buf[at : at + length]
    fields = {
        "fin": buf[0] >> 7,
        "rsv": (buf[0] >> 4) & 7,
        "opcode": buf[0] & 0x0F,
        "len": form,
        "length": length,
        "payload": apply_mask(payload, key) if key else payload,
    }
    return fields, at + length, key


class Receiver:
    """Bytes from the server, cut into things to print: a head, a body, then frames."""

    def __init__(self, out):
        self.out = out
        self.buf = b""
        self.state = "head"  # then "body" or "frames"
        self.body_left = 0
        self.our_key = None  # the key we sent, to check the accept value
        self.closed = False

    def feed(self, data):
        """Adds received bytes; prints and returns how many whole things they completed."""
        self.buf += data
        done = 0
        while True:
            got = self.take_one()
            if not got:
                return done
            done += 1

    def take_one(self):
        if self.state == "head":
            if len(self.buf) >= 5 and not self.buf.startswith(b"HTTP/"):
                self.state = "frames"  # no head at all: read frames
            else:
                return self.take_head()
        if self.state == "body":
            return self.take_body()
        return self.take_frame()

    def take_head(self):
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head, self.buf = self.buf[: end + 4], self.buf[end + 4 :]
        self.out.head("got ", head)
        status = head.split(b" ", 2)[1:2]
        if status == [b"101"]:
            self.state = "frames"
            self.out.check_accept(head, self.our_key)
        else:
            self.state = "body"
            self.body_left = content_length(head)
        return True

    def take_body(self):
        if self.body_left == 0:
            return self.take_extra()
        if self.body_left is None:  # no Content-Length: print the body as it comes
            if not self.buf:
                return False
            body, self.buf = self.buf, b""
        elif len(self.buf) < self.body_left:
            return False  # wait for the whole body
        else:
            body, self.buf = self.buf[: self.body_left], self.buf[self.body_left :]
            self.body_left = 0
        self.out.body(body)
        return True

    def take_extra(self):
        """Bytes after a whole response: no HTTP server should send any."""
        if not self.buf:
            return False
        extra, self.buf = self.buf, b""
        self.out.hex_lines("got ", extra)
        self.out.note(f"{len(extra)} bytes after the response's body")
        return True

    def take_frame(self):
        parsed = parse_frame(self.buf)
        if not parsed:
            return False
        fields, size, key = parsed
        raw, self.buf = self.buf[:size], self.buf[size:]
        self.out.frame("got ", raw, fields, key)
        return True


def content_length(head):
    """The Content-Length of a head, or None (then the body runs to the end)."""
    value = header_value(head, "Content-Length")
    return int(value) if value and value.isdigit() else None


# ---- printing ------------------------------------------------------------------------


class Printer:
    """Everything the tool prints goes through here: 'sent' and 'got' blocks."""

    def __init__(self, dump_limit):
        self.dump_limit = dump_limit

    def say(self, line):
        print(line, flush=True)

    def hex_lines(self, who, data):
        shown = data[: self.dump_limit]
        rows = [shown[i : i + 16].hex(" ") for i in range(0, len(shown), 16)] or [""]
        if len(data) > len(shown):
            rows[-1] += f" ... {len(data) - len(shown)} more bytes"
        self.say(f"{who} {rows[0]}".rstrip())
        for row in rows[1:]:
            self.say(INDENT + row)

    def head(self, who, head, note=""):
        self.say(f"{who} HTTP head, {len(head)} bytes{note}:")
        self.text_lines(head)

    def text_lines(self, data):
        """Bytes as lines of text, each \\r\\n shown and kept at the end of its line."""
        text = data.decode("latin-1").replace("\r", "\\r").replace("\n", "\\n\n")
        for line in text.split("\n"):
            if line:
                self.say(INDENT + line)

    def body(self, body):
        self.say(f"got  body, {len(body)} bytes:")
        self.text_lines(body)

    def check_accept(self, head, key):
        if key is None:
            return
        want = accept_for(key)
        if header_value(head, "Sec-WebSocket-Accept") == want:
            self.say(f"{INDENT}(Sec-WebSocket-Accept is right for our key)")
        else:
            self.say(f"{INDENT}(Sec-WebSocket-Accept is WRONG: our key wants {want})")

    def frame(self, who, raw, fields, key):
        self.hex_lines(who, raw)
        self.say(INDENT + describe_frame(fields, key, len(raw)))

    def note(self, text):
        self.say(f"{INDENT}({text})")


def describe_frame(fields, key, size):
    """One line: FIN=1 RSV=000 opcode=0x1 text, masked ..., length 5 (7-bit): "Hello"."""
    rsv = fields.get("rsv")
    if rsv is None:
        rsv = (fields.get("rsv1", 0) << 2) | (fields.get("rsv2", 0) << 1) | fields.get("rsv3", 0)
    opcode = fields["opcode"]
    name = OPCODE_NAMES.get(opcode, "reserved opcode")
    masked = "masked with " + key.hex(" ") if key else "unmasked"
    length = fields.get("length", len(fields["payload"]))
    form = fields.get("len") or (7 if length < 126 else 16 if length < 65536 else 64)
    line = f"FIN={fields.get('fin', 1)} RSV={rsv:03b} opcode=0x{opcode:x} {name}, {masked}, "
    line += f"length {length} ({form}-bit)"
    if len(fields["payload"]) < length:
        line += f", {len(fields['payload'])} of it sent"
    return line + ": " + describe_payload(opcode, fields["payload"])


def describe_payload(opcode, payload):
    if not payload:
        return "empty"
    if opcode == 8:
        return describe_close(payload)
    if opcode in (0, 1, 9, 10):
        try:
            text = payload.decode("utf-8")
            if len(text) <= 1024:
                return quoted(text)
        except UnicodeDecodeError:
            if opcode == 1:
                return f"not UTF-8: {payload[:32].hex(' ')}"
    return f"{len(payload)} bytes, " + payload[:16].hex(" ") + (" ..." if len(payload) > 16 else "")


def quoted(text):
    """Text between double quotes, with only the invisible characters escaped."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return f'"{shown}"'


def describe_close(body):
    if len(body) < 2:
        return f"a 1-byte close body ({body.hex()}): not allowed"
    code = int.from_bytes(body[:2], "big")
    meaning = CLOSE_CODES.get(code, "application's own" if code >= 3000 else "not a known code")
    try:
        reason = quoted(body[2:].decode("utf-8"))
    except UnicodeDecodeError:
        reason = "not UTF-8: " + body[2:].hex(" ")
    return f"close code {code} ({meaning}), reason {reason}"


# ---- the connection and the steps ----------------------------------------------------


class Client:
    """One TCP connection, the steps run on it, and what came back."""

    def __init__(self, args, out):
        self.args = args
        self.out = out
        self.receiver = Receiver(out)
        self.mask = parse_hex(args.mask) if args.mask else None
        if self.mask is not None and len(self.mask) != 4:
            raise UsageError("--mask is 4 bytes: 8 hex digits")
        self.sock = None

    def connect(self):
        try:
            self.sock = socket.create_connection((self.args.host, self.args.port), timeout=self.args.timeout)
        except OSError as e:
            raise Failure(f"cannot connect to {self.args.host}:{self.args.port}: {e.strerror or e}")
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Failure(f"the send failed: {e.strerror or e}")

    def receive(self, until, seconds):
        """Prints what arrives until `until(things)` holds, the server closes, or `seconds` pass.
        Returns the number of whole things received."""
        things = 0
        deadline = time.monotonic() + seconds
        while not until(things) and not self.receiver.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, BlockingIOError):
                break
            except ConnectionResetError:
                self.out.say("got  a reset (RST): the connection is gone")
                self.receiver.closed = True
                break
            if self.args.reads:
                self.out.note(f"read {len(data)} bytes")
            if not data:
                self.end_of_stream()
                break
            things += self.receiver.feed(data)
        return things

    def end_of_stream(self):
        self.receiver.closed = True
        if self.receiver.buf:
            left = self.receiver.buf
            self.out.say(f"got  {left.hex(' ')}")
            self.out.note(f"{len(left)} bytes that end before the frame or head they start")
        self.out.say("got  EOF (the server closed the connection)")

    # -- the steps, one function each --

    def step_head(self, value):
        head = request_head(self.args)
        self.receiver.our_key = header_value(head, "Sec-WebSocket-Key")
        options = dict(item.partition("=")[::2] for item in value.split(",") if item)
        pieces = min(int(parse_number(options.get("pieces", "1"), "pieces")), len(head))
        pause = float(parse_number(options.get("pause", "0.5"), "pause"))
        if pieces <= 1:
            self.out.head("sent", head, ", in one write")
            self.send(head)
            return
        cuts = [len(head) * i // pieces for i in range(pieces + 1)]
        for n, (start, end) in enumerate(zip(cuts, cuts[1:])):
            self.out.head("sent", head[start:end], f" of {len(head)} (piece {n + 1} of {pieces})")
            self.send(head[start:end])
            if end < len(head):
                self.out.note(f"watching the socket for {pause:g} s")
                self.receive(lambda _: False, pause)

    def step_frame(self, kind, value):
        fields = frame_step(kind, value)
        key = mask_key_for(fields, self.mask)
        data = encode_frame(fields, key)
        self.out.frame("sent", data, fields, key)
        self.send(data)

    def step_raw(self, value):
        data = parse_hex(value)
        self.out.hex_lines("sent", data)
        if data.isascii() and data.decode().isprintable():
            self.out.note(f"as text: {quoted(data.decode())}")
        self.send(data)

    def step_read(self, value):
        wanted = int(parse_number(value or "1", "read"))
        got = self.receive(lambda things: things >= wanted, self.args.timeout)
        if got < wanted and not self.receiver.closed:
            raise Failure(f"read: {got} of {wanted} within {self.args.timeout:g} s (--timeout)")

    def step_wait(self, value):
        self.receive(lambda _: False, float(parse_number(value, "wait")))

    def step_sleep(self, value):
        time.sleep(float(parse_number(value, "sleep")))

    def run(self, steps):
        """Runs the steps; then prints what still comes, until EOF or a quiet --timeout."""
        check_steps(steps)
        self.connect()
        for i, step in enumerate(steps):
            if self.receiver.closed:
                raise Failure(f"the connection ended before step {i + 1} of {len(steps)} ({step})")
            kind, _, value = step.partition(":")
            if kind == "quit":
                self.sock.close()
                return
            self.run_step(kind, value)
        if not self.receiver.closed:
            self.receive(lambda _: False, self.args.timeout)
        if not self.receiver.closed:
            self.out.note(f"nothing more for {self.args.timeout:g} s (--timeout): closing")
        self.sock.close()

    def run_step(self, kind, value):
        if kind == "head":
            self.step_head(value)
        elif kind in FRAME_STEPS:
            self.step_frame(kind, value)
        elif kind == "raw":
            self.step_raw(value)
        elif kind == "read":
            self.step_read(value)
        elif kind == "wait":
            self.step_wait(value)
        elif kind == "sleep":
            self.step_sleep(value)


STEPS = ("head", "text", "binary", "ping", "pong", "close", "frame", "raw", "read", "wait", "sleep", "quit")
FRAME_STEPS = ("text", "binary", "ping", "pong", "close", "frame")


def check_steps(steps):
    """Finds a mistyped step before anything is sent, not halfway through."""
    for step in steps:
        kind, _, value = step.partition(":")
        if kind not in STEPS:
            raise UsageError(f"unknown step {kind!r} (see --help)")
        if kind in FRAME_STEPS:
            fields = frame_step(kind, value)
            encode_frame(fields, mask_key_for(fields, b"\0\0\0\0"))
        elif kind == "raw":
            parse_hex(value)
        elif kind in ("read", "wait", "sleep") and (value or kind != "read"):
            parse_number(value, kind)


def main(argv):
    args = parse_args(argv)
    try:
        Client(args, Printer(args.dump)).run(args.steps)
    except UsageError as e:
        print(f"wsraw.py: {e}", file=sys.stderr)
        return 2
    except Failure as e:
        print(f"wsraw.py: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # our output went to `head` or a closed pager
        sys.stderr.close()
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
