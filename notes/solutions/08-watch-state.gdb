# notes/solutions/08-watch-state.gdb: exercise 1 of notes/08-debugger.md as a
# script: a watchpoint on one connection's state, set at the handshake.
#
#   rust-gdb -batch -x notes/solutions/08-watch-state.gdb \
#       --args target/debug/miochat --addr 127.0.0.1:8080
#
# then, from another terminal, one client that upgrades on /echo and closes:
#
#   python3 tools/wsraw.py 127.0.0.1:8080 --path /echo head read close:1000
#
# tests/notes.rs runs exactly this and compares what gdb prints with
# notes/solutions/08-debugger.md.
set pagination off
set confirm off
set breakpoint pending off
break miochat::http::switching_protocols
run
up
print conn.session.state
watch -l conn.session.state
delete 1
continue
backtrace 3
continue
backtrace 3
kill
