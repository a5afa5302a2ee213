//! Running out: of descriptors (EMFILE/ENFILE) and of connection slots.
//!
//! When `accept` fails with EMFILE the pending connection stays in the kernel's
//! backlog, and an edge-triggered listener gets no new event for it: the
//! client would wait in silence. The classic remedy (libuv, nginx) is to keep
//! one descriptor in reserve: on EMFILE, give it up, accept the waiting
//! connection, answer `503` and close it, then take the reserve back. Each
//! refusal costs a few syscalls and the loop never spins on the listener.

use std::fs::File;
use std::io::{self, Read, Write};

use log::{info, warn};
use mio::net::{TcpListener, TcpStream};

use crate::handshake::Refusal;
use crate::http::refusal_response;

/// The kernel's numbers for "too many open files" (per process, then system-wide) on Linux.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

pub fn is_out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(EMFILE | ENFILE))
}

/// A descriptor held in reserve for refusing connections when none are left.
#[derive(Debug)]
pub struct SpareDescriptor {
    /// `/dev/null`, opened at start-up; `None` while it is lent out or could not be reopened.
    file: Option<File>,
    /// Inside an episode of exhaustion (logged once when it starts and once when it ends).
    exhausted: bool,
}

impl SpareDescriptor {
    pub fn reserve() -> SpareDescriptor {
        SpareDescriptor {
            file: File::open("/dev/null").ok(),
            exhausted: false,
        }
    }

    /// Whether descriptors ran out and have not been seen to come back.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// Called on EMFILE/ENFILE. Refuses one waiting connection with `503`
    /// using the reserve; returns false when that was not possible, and the
    /// caller must stop accepting until a connection closes.
    pub fn refuse_one(&mut self, listener: &TcpListener, error: &io::Error) -> bool {
        if !self.exhausted {
            warn!("accept: {error}; refusing new connections with 503 until some close");
            self.exhausted = true;
        }
        if self.file.take().is_none() {
            return false;
        }
        let refused = match listener.accept() {
            Ok((socket, _)) => {
                refuse(socket, "server is out of file descriptors");
                true
            }
            Err(_) => false,
        };
        self.file = File::open("/dev/null").ok();
        refused
    }

    /// An accept succeeded: the episode, if any, is over.
    pub fn recovered(&mut self) {
        if self.exhausted {
            info!("accepting connections again");
            self.exhausted = false;
        }
    }
}

/// `--max-connections` reached: `503`, then close.
pub fn refuse_busy(socket: TcpStream) {
    refuse(socket, "server is at its connection limit");
}

/// Answers a connection we will not keep, without registering it. What the
/// client already sent is read first, so closing sends FIN rather than a reset.
fn refuse(mut socket: TcpStream, reason: &'static str) {
    let mut discard = [0u8; 4096];
    let _ = socket.read(&mut discard);
    let _ = socket.write(&refusal_response(Refusal {
        status: 503,
        reason,
    }));
}
