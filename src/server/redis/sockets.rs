//! `--redis`: the two Redis sockets' syscalls: a non-blocking connect and
//! its outcome, reading until `WouldBlock`, writing until done or full.

use std::io::{self, Read, Write};
use std::time::Instant;

use log::{info, warn};
use mio::Interest;
use mio::net::TcpStream;

use super::{Cluster, token_of};
use crate::cluster::{LinkState, Role};

/// Starts a non-blocking connect; its outcome comes as an event.
pub(super) fn start_connect(cluster: &mut Cluster, role: Role, poll: &mio::Poll, now: Instant) {
    let link = cluster.backend.link(role);
    link.connecting(now);
    let connected = TcpStream::connect(cluster.addr).and_then(|mut socket| {
        let interest = Interest::READABLE | Interest::WRITABLE;
        poll.registry()
            .register(&mut socket, token_of(role), interest)?;
        Ok(socket)
    });
    match connected {
        Ok(socket) => *cluster.socket(role) = Some(socket),
        Err(e) => {
            let wait = link.fail(now);
            warn!(
                "redis {}: connect failed: {e}; retrying in {} ms",
                link.name,
                wait.as_millis()
            );
        }
    }
}

/// `WRITABLE` on a connecting socket: connected, or failed (mio docs,
/// `TcpStream::connect`: check `take_error`, then `peer_addr`).
pub(super) fn finish_connect(
    cluster: &mut Cluster,
    role: Role,
    last_id: u64,
) -> Result<(), String> {
    let Some(socket) = cluster.socket(role).as_ref() else {
        return Ok(());
    };
    if let Ok(Some(e)) | Err(e) = socket.take_error() {
        return Err(format!("connect failed: {e}"));
    }
    match socket.peer_addr() {
        Ok(_) => {}
        // Not yet: a spurious wake-up.
        Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
        Err(e) => return Err(format!("connect failed: {e}")),
    }
    let _ = socket.set_nodelay(true);
    info!(
        "redis {}: connected to {}",
        cluster.backend.link(role).name,
        cluster.addr
    );
    // A fresh epoch on every greeting: if the room is gone (Redis restarted
    // empty), the one that wins `SET NX` is new, so old ids are never taken
    // for new ones.
    let epoch = crate::server::new_epoch();
    cluster.backend.greet(role, cluster.db, &epoch, last_id);
    Ok(())
}

/// Reads until `WouldBlock`, into the link's `read_buf`.
pub(super) fn read_link(
    cluster: &mut Cluster,
    role: Role,
    scratch: &mut [u8],
) -> Result<(), String> {
    let (Some(socket), link) = cluster.parts(role) else {
        return Ok(());
    };
    if link.state == LinkState::Connecting {
        return Ok(());
    }
    loop {
        match socket.read(scratch) {
            Ok(0) => return Err("Redis closed the connection".into()),
            Ok(n) => link.read_buf.extend_from_slice(&scratch[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
}

/// Writes the link's `write_buf` until it is empty or the socket is full
/// (`WRITABLE` is registered from the start, so a full socket wakes us).
pub(super) fn write_link(cluster: &mut Cluster, role: Role) -> Result<(), String> {
    let (Some(socket), link) = cluster.parts(role) else {
        return Ok(());
    };
    if matches!(link.state, LinkState::Down | LinkState::Connecting) {
        return Ok(());
    }
    while !link.write_buf.is_empty() {
        match socket.write(&link.write_buf) {
            Ok(0) => return Err("write returned 0".into()),
            Ok(n) => drop(link.write_buf.drain(..n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("write failed: {e}")),
        }
    }
    Ok(())
}
