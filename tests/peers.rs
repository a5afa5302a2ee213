//! The async versions of the chat (`make run-tokio`, `make run-node`), the
//! benchmark peers in `bench/peers/`, serve what note 6 compares: the
//! welcome frame on `/chat`, every message to every other client, and
//! `GET /status` with `{"connections": N}`, as miochat does.
//!
//! The tokio peer is its own Cargo workspace: it is built here, in debug,
//! under this target's tmp folder (about 20 s the first time). The Node peer
//! needs `ws` in `bench/peers/node-ws/node_modules` (`make deps` installs it).

mod common;

use common::{DEADLINE, RawClient, ServerProcess, http_request, upgrade_request, wait_until};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A peer started like miochat (`--addr 127.0.0.1:0`), its stdout (where
/// both peers print `listening on ADDR`) sent to stderr, where
/// `ServerProcess` reads the address and keeps the log. `exec` keeps the
/// peer itself as the child, so the guard's kill reaches it.
fn start_peer(program: &Path, args: &[&str]) -> ServerProcess {
    let mut command = Command::new("sh");
    command
        .current_dir(root())
        .args(["-c", "exec \"$0\" \"$@\" 1>&2"])
        .arg(program)
        .args(args);
    ServerProcess::start_with(command, &[])
}

/// The number after `"connections": ` in the peer's `/status` body.
fn connections(server: &ServerProcess) -> u64 {
    let response = http_request(
        server.addr,
        "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let number = body
        .strip_prefix("{\"connections\": ")
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or_else(|| panic!("/status body is not {{\"connections\": N}}: {body:?}"));
    number.parse().unwrap()
}

/// Upgrades on `path`. tungstenite writes header names in lower case, which
/// HTTP allows, so only the status line and the accept value are checked.
fn connect(addr: SocketAddr, path: &str) -> RawClient {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(upgrade_request(path).as_bytes()).unwrap();
    let mut status = [0u8; 12];
    stream.read_exact(&mut status).unwrap();
    assert_eq!(&status, b"HTTP/1.1 101", "no 101 on {path}");
    RawClient::from_upgraded(stream)
}

/// What `make run` users see, checked on a peer: welcome, status, broadcast.
fn serves_the_same_chat(server: &ServerProcess) {
    assert_eq!(connections(server), 0);
    let mut ann = connect(server.addr, "/chat");
    assert_eq!(
        ann.read_text(),
        r#"{"type":"welcome","message":"connected to chat"}"#
    );
    let mut bob = connect(server.addr, "/");
    bob.skip_welcome();
    assert!(
        wait_until(DEADLINE, || connections(server) == 2),
        "/status never said 2 connections"
    );
    ann.send_text("hello from ann");
    assert_eq!(bob.read_text(), "hello from ann");
    let mut echo = connect(server.addr, "/echo");
    echo.skip_welcome();
    echo.send_text("back to me");
    assert_eq!(echo.read_text(), "back to me");
}

#[test]
fn the_node_peer_serves_the_same_chat() {
    let ws = root().join("bench/peers/node-ws/node_modules/ws/package.json");
    assert!(
        ws.exists(),
        "the Node peer's `ws` is not installed: run `make deps` (tests/install-deps.sh)"
    );
    let server = start_peer(Path::new("node"), &["bench/peers/node-ws/server.js"]);
    serves_the_same_chat(&server);
}

#[test]
fn the_tokio_peer_serves_the_same_chat() {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("peers");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root())
        .args(["build", "--quiet", "--locked", "--manifest-path"])
        .arg("bench/peers/tokio-ws/Cargo.toml")
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("cargo");
    assert!(status.success(), "building bench/peers/tokio-ws failed");
    let server = start_peer(&target.join("debug/tokio-ws"), &[]);
    serves_the_same_chat(&server);
}
