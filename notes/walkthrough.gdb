# notes/walkthrough.gdb: the session of notes/08-debugger.md as a script.
#
# Load notes/breakpoints.gdb first, then this file; a client must connect
# two chat clients and have the first send "Hello" (tests/notes.rs does, and
# so does notes/two_clients.py):
#
#   rust-gdb -batch -x notes/breakpoints.gdb -x notes/walkthrough.gdb \
#       --args target/debug/miochat --addr 127.0.0.1:8080 --heartbeat-ms 2000
#
# tests/notes.rs runs exactly this and fails on any gdb error, so every
# command shown in notes/08-debugger.md is known to work on today's code.

# breakpoints.gdb leaves the timer stop disabled (heartbeats run on the wall
# clock); step 5 enables it, as the note does.
set confirm off
echo \n## 1. accept\n
run
backtrace
print self.next_token
print self.connections
echo \n## 2. handshake\n
continue
print accept
up
print token
bytes request.head
print conn.session.state
echo \n## (the second client: accept and handshake again)\n
continue
continue
echo \n## 3. frame decoded\n
continue
backtrace 6
bytes payload
print/x mask
finish
bytes payload
print header
up
up
bytes self.read_buf
print self.read_pos
print self.state
echo \n## 4. broadcast\n
continue
print sender
bytes message.frame
print self.history.next_id
print self.books.log_grew
print self.books.waiting_readers
finish
print self.history.next_id
print self.history.bytes
print self.books.log_grew
print self.books.flush_list

echo \n## 5. timer fired\n
enable $bp_timer
continue
print self.state
print self.awaiting_pong
print now
finish
print token
print conn.session.awaiting_pong
bytes conn.session.write_buf
kill
