# notes/breakpoints.gdb: the five stops of the debugger walkthrough
# (notes/08-debugger.md), for rust-gdb or gdb on a debug build.
#
#   make debug            builds, then: rust-gdb -x notes/breakpoints.gdb --args target/debug/miochat ...
#   (gdb) run             then open two browser tabs, or run notes/two_clients.py
#
# Every stop prints a banner line ">>> NAME: ..." after gdb's own
# "Breakpoint N, function (args) at file:line". tests/notes.rs runs
# notes/walkthrough.gdb on top of this file and fails if a name below no
# longer resolves, or if the stops stop coming in this order.

set pagination off
# A name that no longer exists must be an error, not a silent "pending"
# breakpoint that never fires.
set breakpoint pending off

# ---- a helper: `bytes EXPR` shows a Vec<u8> or a &[u8] as text or as hex ----
# (gdb has no indexing into a Vec; this reads its pointer and length instead.)
python
import gdb

def _miochat_pointer_and_len(value):
    kind = value.type.strip_typedefs()
    if kind.code in (gdb.TYPE_CODE_PTR, gdb.TYPE_CODE_REF):
        value = value.dereference()
        kind = value.type.strip_typedefs()
    names = [f.name for f in kind.fields()] if kind.code == gdb.TYPE_CODE_STRUCT else []
    if "data_ptr" in names and "length" in names:  # a slice: &[u8], &mut [u8]
        return value["data_ptr"], int(value["length"])
    if "buf" in names and "len" in names:  # a Vec<u8>: the first pointer inside `buf`
        pointer = value["buf"]
        while pointer.type.strip_typedefs().code != gdb.TYPE_CODE_PTR:
            pointer = pointer[pointer.type.strip_typedefs().fields()[0]]
        return pointer, int(value["len"])
    raise gdb.GdbError("bytes: %s is not a Vec<u8> or a byte slice" % kind)

class MiochatBytes(gdb.Command):
    """bytes EXPR: print a Vec<u8> or &[u8] as text if it is printable, else as hex."""

    def __init__(self):
        super().__init__("bytes", gdb.COMMAND_DATA)

    def invoke(self, argument, from_tty):
        pointer, length = _miochat_pointer_and_len(gdb.parse_and_eval(argument))
        data = bytes(gdb.selected_inferior().read_memory(pointer, length)) if length else b""
        if data and all(32 <= b < 127 or b in (9, 10, 13) for b in data):
            text = data.decode().replace("\r", "\\r").replace("\n", "\\n\n")
            print("%d bytes, as text:\n%s" % (length, text.rstrip("\n")))
            return
        print("%d bytes:" % length)
        for at in range(0, length, 16):
            row = data[at:at + 16]
            hexes = " ".join("%02x" % b for b in row)
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
            print("  %04x  %-47s  |%s|" % (at, hexes, text))

MiochatBytes()
end

# ---- 1. accept: the listener is readable; new TCP connections get a token ----
break miochat::server::Server::accept_new_clients
set $bp_accept = $bpnum
commands
  echo >>> accept: the listener is readable (notes/08-debugger.md#1-accept)\n
end

# ---- 2. handshake: a valid upgrade request; the 101 answer is being built ----
# switching_protocols is called only on the 101 path of
# Server::answer_request: `up` to see the connection and the request head.
break miochat::http::switching_protocols
set $bp_handshake = $bpnum
commands
  echo >>> handshake: the request head is valid, 101 is next (notes/08-debugger.md#2-handshake)\n
end

# ---- 3. frame decoded: a whole client frame is in read_buf, about to be unmasked ----
# MessageReader::decode calls apply_mask once per complete frame, after the
# header has been parsed and checked: `up` shows the header, `up` again the
# session whose read_buf holds the frame.
break miochat::frame::apply_mask
set $bp_frame = $bpnum
commands
  echo >>> frame: a complete client frame, still masked (notes/08-debugger.md#3-frame-decoded)\n
end

# ---- 4. broadcast: one encoded frame, about to be stored once in the shared log ----
# Server::append_to_history is the whole broadcast: it appends the message to
# the log and marks that the log grew; nothing is copied to anyone. The
# waiting readers write it from the log in step 6. `finish`, then look at
# self.history and self.books.log_grew.
break miochat::server::Server::append_to_history
set $bp_broadcast = $bpnum
commands
  echo >>> broadcast: the message holds the server frame (notes/08-debugger.md#4-broadcast)\n
end

# ---- 5. timer fired: a connection's timer was due; its session decides what that means ----
# Session::on_time runs once per timer that fired, with the turn's `now`: a
# handshake timeout, a heartbeat (a Ping, or the end of a silent peer) or a
# close timeout, by the session's state. `finish` to see what it queued,
# from fire_timers.
break miochat::session::Session::on_time
set $bp_timer = $bpnum
commands
  echo >>> timer: a timer fired; the session decides what it means (notes/08-debugger.md#5-timer-fired)\n
end
# Heartbeats run on the wall clock, and a person reading the note at the
# stops of steps 1 to 4 takes longer than one: this stop would come first.
# It stays off until step 5 of the note, which says `enable $bp_timer`.
disable $bp_timer
echo miochat: stop 5 (timer) is off until step 5 of notes/08-debugger.md, which enables it.\n
