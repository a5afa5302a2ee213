//! miochat: a WebSocket chat server on one `mio` poll loop, written to be read.
//!
//! Reading order (each file owns one idea):
//! - `server.rs`: the loop: poll, dispatch, fire timers, flush, retire; its
//!   handlers in `server/` (bytes in and delivery, bytes out, timers, and the
//!   bookkeeping that keeps the loop's records in step);
//! - `connection.rs`: one client as the loop sees it: socket, session, marks;
//! - `session.rs`: one connection's protocol, without a socket: state,
//!   buffers, close handshake, ping/pong, timeouts;
//! - `handshake.rs` and `http.rs`: the HTTP upgrade and the plain HTTP answers;
//!   `framing.rs`: where a request's body ends, and keep-alive;
//! - `http_chat.rs`, `sse.rs`, `long_poll.rs`, `client_key.rs`: the chat
//!   without WebSocket (Server-Sent Events, long-polling, `POST /send`);
//! - `frame.rs` and `message.rs`: frames on the wire, and messages made of them;
//! - `utf8.rs`: checking text that arrives in pieces;
//! - `timer.rs`: the timing wheel behind heartbeats and timeouts;
//! - `limits.rs`: what happens when descriptors or slots run out;
//! - `resp.rs` and `cluster.rs`: the Redis protocol (RESP2), and one room
//!   across processes through a Redis Stream (`--redis`);
//! - `error.rs`: the protocol rules a peer can break, and their close codes;
//! - `config.rs`: the command line.

pub mod client_key;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod error;
pub mod frame;
pub mod framing;
pub mod handshake;
pub mod history;
pub mod http;
pub mod http_chat;
pub mod limits;
pub mod long_poll;
pub mod message;
pub mod resp;
pub mod server;
pub mod session;
pub mod sse;
pub mod timer;
pub mod utf8;
pub mod v1;
