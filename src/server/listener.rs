//! The listening socket, made through `socket2` so `--reuse-port` can set
//! `SO_REUSEPORT` before `bind` (socket(7): "For TCP sockets, this option
//! allows accept(2) load distribution in a multi-threaded server to be
//! improved by using a distinct listener socket for each thread" — or, here,
//! for each process: the kernel spreads new connections over every socket
//! bound to the port with the option set, all by the same user).

use std::io;
use std::net::SocketAddr;

use mio::net::TcpListener;
use socket2::{Domain, Socket, Type};

/// The accept queue's length, as the standard library and mio choose it.
const BACKLOG: i32 = 128;

/// Binds `addr` as `TcpListener::bind` does (with `SO_REUSEADDR`, so a
/// restarted server does not wait for TIME_WAIT), plus `SO_REUSEPORT`
/// when asked.
pub fn bind_listener(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}
