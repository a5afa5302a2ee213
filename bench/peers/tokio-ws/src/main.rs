//! tokio-ws: the idiomatic tokio-tungstenite broadcast chat server, as a
//! benchmark peer for miochat. A task per connection, an unbounded mpsc
//! channel per client, and a shared map of those senders behind a Mutex.
//! Same contract as miochat: welcome on open, `/` and `/chat` join the chat,
//! `/echo` echoes, `GET /status` answers `{"connections": N}`, and a heartbeat
//! drops whoever did not answer the previous ping.
//!
//! usage: tokio-ws [--port 0] [--host 127.0.0.1] [--threads 1] [--heartbeat-ms 30000]
//!        tokio-ws --addr 127.0.0.1:8080   (as miochat's --addr; `make run-tokio`)
//!        --threads 1 runs a current_thread runtime; 0 means one worker per core.

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

type Hub = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>>;

const WELCOME: &str = r#"{"type":"welcome","message":"connected to chat"}"#;

struct Opts {
    host: String,
    port: u16,
    threads: usize,
    heartbeat: Duration,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        host: "127.0.0.1".into(),
        port: 0,
        threads: 1,
        heartbeat: Duration::from_millis(30_000),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--host" => o.host = val()?,
            "--port" => o.port = val()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--addr" => {
                let addr = val()?;
                let (host, port) = addr.rsplit_once(':').ok_or("--addr: HOST:PORT")?;
                o.host = host.to_owned();
                o.port = port.parse().map_err(|e| format!("--addr: {e}"))?;
            }
            "--threads" => o.threads = val()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--heartbeat-ms" => {
                let ms: u64 = val()?.parse().map_err(|e| format!("--heartbeat-ms: {e}"))?;
                o.heartbeat = Duration::from_millis(ms.max(1));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

fn main() {
    let opts = parse_opts().unwrap_or_else(|e| {
        eprintln!("tokio-ws: {e}\nusage: tokio-ws [--addr HOST:PORT | --port 0 --host 127.0.0.1] [--threads 1] [--heartbeat-ms 30000]");
        std::process::exit(2);
    });
    let rt = if opts.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if opts.threads > 1 {
            b.worker_threads(opts.threads);
        }
        b.enable_all().build()
    }
    .expect("tokio runtime");
    if let Err(e) = rt.block_on(serve(opts)) {
        eprintln!("tokio-ws: {e}");
        std::process::exit(1);
    }
}

async fn serve(opts: Opts) -> std::io::Result<()> {
    let listener = TcpListener::bind((opts.host.as_str(), opts.port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let hub = Hub::default();
    let mut next_id = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                eprintln!("tokio-ws: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        next_id += 1;
        tokio::spawn(handle(stream, hub.clone(), next_id, opts.heartbeat));
    }
}

// The Err type of the route callback is tungstenite's own (an http::Response).
#[allow(clippy::result_large_err)]
async fn handle(mut stream: TcpStream, hub: Hub, id: u64, heartbeat: Duration) {
    let _ = stream.set_nodelay(true);
    // A plain `GET /status` is answered here; anything else goes to the handshake.
    let mut head = [0u8; 16];
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), stream.peek(&mut head)).await
        && head[..n].starts_with(b"GET /status")
    {
        // miochat's first field, written as miochat writes it.
        let body = format!(r#"{{"connections": {}}}"#, hub.lock().unwrap().len());
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(resp.as_bytes()).await;
        let _ = stream.shutdown().await;
        return;
    }
    let mut path = String::new();
    let route = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        path = req.uri().path().to_string();
        match path.as_str() {
            "/" | "/chat" | "/echo" => Ok(resp),
            _ => {
                let mut r = ErrorResponse::new(Some("not found".into()));
                *r.status_mut() = StatusCode::NOT_FOUND;
                Err(r)
            }
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, route).await else {
        return;
    };
    if path == "/echo" {
        echo(ws, heartbeat).await;
    } else {
        chat(ws, hub, id, heartbeat).await;
    }
}

async fn chat(ws: WebSocketStream<TcpStream>, hub: Hub, id: u64, heartbeat: Duration) {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Join before the welcome goes out: whoever has seen the welcome is in the hub.
    hub.lock().unwrap().insert(id, tx);
    let mut tick = tokio::time::interval(heartbeat);
    tick.tick().await;
    let mut alive = true;
    if sink.send(Message::text(WELCOME)).await.is_ok() {
        'conn: loop {
            tokio::select! {
                incoming = stream.next() => match incoming {
                    Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                        for (&peer, tx) in hub.lock().unwrap().iter() {
                            if peer != id {
                                let _ = tx.send(msg.clone());
                            }
                        }
                    }
                    Some(Ok(Message::Pong(_))) => alive = true,
                    Some(Ok(Message::Close(_))) => {
                        // tungstenite queued the close reply: send it, then hang up.
                        let _ = sink.flush().await;
                        break;
                    }
                    Some(Ok(_)) => {} // pings: tungstenite answers them itself
                    None | Some(Err(_)) => break,
                },
                Some(out) = rx.recv() => {
                    // Queue whatever is waiting, then write it in one flush.
                    if sink.feed(out).await.is_err() {
                        break;
                    }
                    while let Ok(more) = rx.try_recv() {
                        if sink.feed(more).await.is_err() {
                            break 'conn;
                        }
                    }
                    if sink.flush().await.is_err() {
                        break;
                    }
                }
                _ = tick.tick() => {
                    if !alive {
                        break;
                    }
                    alive = false;
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    hub.lock().unwrap().remove(&id);
}

async fn echo(mut ws: WebSocketStream<TcpStream>, heartbeat: Duration) {
    let mut tick = tokio::time::interval(heartbeat);
    tick.tick().await;
    let mut alive = true;
    if ws.send(Message::text(WELCOME)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Pong(_))) => alive = true,
                Some(Ok(Message::Close(_))) => {
                    let _ = ws.flush().await;
                    break;
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => break,
            },
            _ = tick.tick() => {
                if !alive || ws.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
                alive = false;
            }
        }
    }
}
