# notes/solutions/08-who-ended-it.gdb: exercise 2 of notes/08-debugger.md as
# a script: stop where every connection ends, and ask why.
#
#   rust-gdb -batch -x notes/solutions/08-who-ended-it.gdb \
#       --args target/debug/miochat --addr 127.0.0.1:8080
#
# then, from another terminal, a client that breaks a rule:
#
#   python3 tools/wsraw.py 127.0.0.1:8080 --path /echo head read frame:rsv1=1,payload=x
#
# tests/notes.rs runs exactly this and compares what gdb prints with
# notes/solutions/08-debugger.md.
set pagination off
set confirm off
set breakpoint pending off
break miochat::session::Session::end
run
print ending
backtrace 6
kill
