//! What a hostile client probe found, each as a test against the real
//! binary: unfinished messages bounded in time and in total, a slow upload
//! that is not mistaken for a dead peer, half-open connections that cannot
//! crowd out real ones, and kernel memory bounded per connection
//! (notes/hostile-inputs.md).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

/// Tests with thousands of connections, or that read system-wide kernel
/// memory, take the machine for themselves.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// A masked frame header announcing `len` payload bytes (mask 0: the payload
/// goes on the wire as it is, so it can be sent in pieces).
fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode, 0x80 | 127];
    out.extend(len.to_be_bytes());
    out.extend([0, 0, 0, 0]);
    out
}

/// Kernel TCP memory now, in KiB: `/proc/net/sockstat` counts it in pages.
fn kernel_tcp_kib() -> u64 {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").unwrap();
    let line = sockstat.lines().find(|l| l.starts_with("TCP:")).unwrap();
    let mut words = line.split_whitespace();
    let pages: u64 = loop {
        match words.next() {
            Some("mem") => break words.next().unwrap().parse().unwrap(),
            Some(_) => {}
            None => panic!("no mem in {line:?}"),
        }
    };
    pages * 4
}

#[test]
fn a_fragmented_message_kept_open_with_empty_continuations_is_closed_at_the_limit() {
    let server = ServerProcess::start(&["--message-timeout-ms", "1000", "--heartbeat-ms", "300"]);
    let mut client = RawClient::connect(server.addr, "/chat");
    client.skip_welcome();
    let started = Instant::now();
    client.send(&client_frame(false, TEXT, b"never "));
    // Each continuation is a frame, so the peer looks alive; the message never ends.
    let close = loop {
        client.send(&client_frame(false, CONTINUATION, b""));
        match client.poll_frame(Duration::from_millis(200)) {
            Some(frame) if frame.opcode == CLOSE => break frame,
            Some(frame) if frame.opcode == PING => client.send(&client_frame(true, PONG, b"")),
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
        assert!(started.elapsed() < DEADLINE, "never closed");
    };
    let took = started.elapsed();
    assert_eq!(close.close_code(), Some(1008));
    assert_eq!(&close.payload[2..], b"message not finished in time");
    assert!(
        took >= Duration::from_millis(1000),
        "closed early: {took:?}"
    );
    assert!(took < Duration::from_millis(3000), "closed late: {took:?}");
}

#[test]
fn unfinished_messages_are_bounded_for_the_server_and_the_client_going_over_gets_1009() {
    let _heavy = heavy();
    const BUDGET: u64 = 32 << 20;
    let server = ServerProcess::start(&[
        "--max-input-bytes",
        &BUDGET.to_string(),
        "--max-message-bytes",
        "2097152",
    ]);
    let baseline_kib = server.rss_kib();
    let mut refused = 0;
    let mut holding = Vec::new();
    for _ in 0..200 {
        let mut client = RawClient::connect(server.addr, "/chat");
        client.skip_welcome();
        // A 1 MiB frame, all of it but the last byte: unfinished forever.
        client.send(&header(true, BINARY, 1 << 20));
        client.send(&vec![b'x'; (1 << 20) - 1]);
        holding.push(client);
    }
    for client in &mut holding {
        match client.poll_frame(Duration::from_millis(200)) {
            Some(frame) if frame.opcode == CLOSE => {
                assert_eq!(frame.close_code(), Some(1009), "{frame:?}");
                assert_eq!(&frame.payload[2..], b"server input budget exceeded");
                refused += 1;
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
    }
    let grown_kib = server.peak_rss_kib().saturating_sub(baseline_kib);
    eprintln!("200 unfinished 1 MiB messages: {refused} refused, peak RSS growth {grown_kib} KiB");
    // About 32 fit in 32 MiB; the rest were refused.
    assert!((160..=172).contains(&refused), "{refused} refused");
    assert!(
        grown_kib < (BUDGET >> 10) + 16 * 1024,
        "RSS grew {grown_kib} KiB with a 32 MiB budget"
    );
}

#[test]
fn frame_headers_alone_do_not_use_the_input_budget() {
    // 64 headers of 1 MiB frames: announced, not received. Were announced
    // sizes counted, a 1 MiB budget would be gone and the message below refused.
    let server = ServerProcess::start(&["--max-input-bytes", "1048576"]);
    let mut idle: Vec<RawClient> = (0..64)
        .map(|_| {
            let mut c = RawClient::connect(server.addr, "/echo");
            c.send(&header(true, BINARY, 1 << 20));
            c
        })
        .collect();
    let mut echo = RawClient::connect(server.addr, "/echo");
    let payload = vec![5u8; 300_000];
    echo.send(&client_frame(true, BINARY, &payload));
    assert_eq!(echo.read_message().payload, payload);
    for client in &mut idle {
        assert!(client.poll_frame(Duration::from_millis(1)).is_none());
    }
}

#[test]
fn an_echo_client_that_never_reads_is_dropped_after_the_stall_even_under_the_limit() {
    // Its reply (900 KB) is under --max-buffered-bytes (1 MiB), so the limit
    // alone would let it hold that much for as long as it keeps the
    // connection alive; output that does not move is what counts.
    let server = ServerProcess::start(&["--stall-ms", "500", "--heartbeat-ms", "60000"]);
    let mut echo = RawClient::connect(server.addr, "/echo");
    socket2::SockRef::from(&echo.stream)
        .set_recv_buffer_size(16 * 1024)
        .unwrap();
    echo.send(&client_frame(true, BINARY, &vec![3u8; 900_000]));
    let peer = echo.stream.local_addr().unwrap();
    server.wait_for_left(peer, "Echo", "dropped by server", 1008, "slow consumer");
}

#[test]
fn a_frame_uploaded_slowly_is_delivered_whole_though_it_takes_several_heartbeats() {
    let server = ServerProcess::start(&["--heartbeat-ms", "1000"]);
    let mut slow = RawClient::connect(server.addr, "/chat");
    slow.skip_welcome();
    let mut reader = RawClient::connect(server.addr, "/chat");
    reader.skip_welcome();
    // The reader answers pings while it waits for the message.
    let reading = std::thread::spawn(move || {
        loop {
            let frame = reader.read_frame().expect("the reader was closed");
            match frame.opcode {
                PING => reader.send(&client_frame(true, PONG, &frame.payload)),
                BINARY => return frame.payload,
                other => panic!("unexpected opcode {other}"),
            }
        }
    });
    // 100 KB at 20 KB/s: 5 s, five heartbeat intervals, and no frame completes
    // before the end. The server's pings wait unread in our socket: the
    // bytes arriving are what shows we are alive.
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    slow.send(&header(true, BINARY, payload.len() as u64));
    for chunk in payload.chunks(1000) {
        slow.send(chunk);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(reading.join().unwrap(), payload);
    assert!(
        !server.log().contains("reaped by heartbeat"),
        "{}",
        server.log()
    );
}

#[test]
fn half_open_connections_cannot_keep_a_real_client_out() {
    let _heavy = heavy();
    raise_fd_limit(8192);
    let server = server_with_fd_limit(8192, &["--max-handshakes", "1000"]);
    // 2,000 connections that send half a request head and stop.
    let mut half_open = Vec::new();
    for _ in 0..2000 {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream
            .write_all(b"GET /chat HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        half_open.push(stream);
    }
    server.wait_for_log("connections still handshaking, the oldest makes room");
    for attempt in 0..10 {
        let started = Instant::now();
        let mut client = RawClient::connect(server.addr, "/chat");
        client.skip_welcome();
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "attempt {attempt} took {took:?}"
        );
        // More half-open connections come between attempts.
        for _ in 0..100 {
            let mut stream = TcpStream::connect(server.addr).unwrap();
            stream.write_all(b"GET /chat HTTP/1.1\r\n").unwrap();
            half_open.push(stream);
        }
    }
    // The oldest were cut with a whole 408.
    let mut first = half_open.swap_remove(0);
    first.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut answer = Vec::new();
    first.read_to_end(&mut answer).unwrap();
    assert_whole_response(&answer, "HTTP/1.1 408 Request Timeout");
}

#[test]
fn large_broadcasts_to_readers_that_never_read_cost_bounded_kernel_and_user_memory() {
    let _heavy = heavy();
    raise_fd_limit(8192);
    const READERS: u64 = 500;
    const SNDBUF: u64 = 128 << 10;
    const HISTORY: u64 = 16 << 20;
    let server = server_with_fd_limit(
        8192,
        &[
            "--send-buffer-bytes",
            &SNDBUF.to_string(),
            "--max-message-bytes",
            "1048576",
        ],
    );
    let mut sender = RawClient::connect(server.addr, "/chat");
    sender.skip_welcome();
    let stuck: Vec<RawClient> = (0..READERS)
        .map(|_| {
            let mut c = RawClient::connect(server.addr, "/chat");
            c.skip_welcome();
            c
        })
        .collect();
    server.wait_for_status(READERS + 1);
    let (rss_before, kernel_before) = (server.rss_kib(), kernel_tcp_kib());
    for seq in 0..2u8 {
        sender.send(&client_frame(true, BINARY, &vec![seq; 1 << 20]));
    }
    // Let the server write what the sockets take.
    server.wait_for_log("sent Binary 1048576 bytes");
    std::thread::sleep(Duration::from_millis(1500));
    let user = server.peak_rss_kib().saturating_sub(rss_before);
    let kernel = kernel_tcp_kib().saturating_sub(kernel_before);
    // The bound from the flags: the log, plus per reader what the kernel may
    // hold for it: our send buffer (which Linux doubles for bookkeeping) and
    // the reader's receive buffer (its default, 128 KiB here, doubled too),
    // plus 32 MiB for everything else.
    let rcvbuf_kib: u64 = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_rmem")
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        >> 10;
    let bound = (HISTORY >> 10) + READERS * (2 * (SNDBUF >> 10) + 2 * rcvbuf_kib) + 32 * 1024;
    eprintln!(
        "2 × 1 MiB to {READERS} readers that never read: RSS +{user} KiB, kernel TCP +{kernel} KiB, bound {bound} KiB"
    );
    assert!(
        user + kernel < bound,
        "{user} + {kernel} KiB over {bound} KiB"
    );
    drop(stuck);
}

/// Pipelined requests are a few bytes in and kilobytes out: 40 clients each
/// asking for the page script 400 times and reading nothing could make the
/// server hold 40 × `--max-buffered-bytes` of answers. The output all
/// connections hold is bounded for the server (`--max-output-bytes`): past
/// it, requests wait (their bytes stay in TCP); the non-readers are dropped
/// after `--stall-ms`, and a polite client is answered meanwhile.
#[test]
fn pipelined_answers_nobody_reads_are_bounded_for_the_server_not_per_client() {
    let _heavy = heavy();
    const BUDGET: u64 = 2 << 20;
    let server = ServerProcess::start(&[
        "--max-output-bytes",
        &BUDGET.to_string(),
        "--max-buffered-bytes",
        "4194304",
        "--send-buffer-bytes",
        "4096",
        "--stall-ms",
        "1500",
    ]);
    let baseline_kib = server.rss_kib();
    let request = b"GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n".repeat(400);
    let mut greedy = Vec::new();
    for _ in 0..40 {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&server.addr.into()).unwrap();
        let mut stream: TcpStream = socket.into();
        // As much as TCP takes now: the rest would wait for a server that
        // has (rightly) stopped reading.
        stream.set_nonblocking(true).unwrap();
        let _ = stream.write(&request);
        greedy.push(stream);
    }
    server.wait_for_log("dropped by server: it did not read its answers");
    // A polite client gets its page while the greedy ones wait or go.
    let started = Instant::now();
    let page = http_request(
        server.addr,
        "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    let grown_kib = server.peak_rss_kib().saturating_sub(baseline_kib);
    eprintln!(
        "40 clients × 400 pipelined requests unread: peak RSS growth {grown_kib} KiB, a polite request took {:?}",
        started.elapsed()
    );
    // The budget, one answer over it per connection, and the allocator's slack.
    assert!(
        grown_kib < (BUDGET >> 10) + 8 * 1024,
        "RSS grew {grown_kib} KiB with a 2 MiB budget"
    );
}

/// A body that never finishes is a slow loris too: connections waiting for
/// a request's body count in `--max-handshakes` like those waiting for its
/// head, so the oldest is cut (a whole 408) and a real client gets a slot,
/// however many slow bodies arrive.
#[test]
fn slow_bodies_count_as_half_open_and_cannot_keep_a_real_client_out() {
    let server = ServerProcess::start(&[
        "--max-handshakes",
        "20",
        "--max-connections",
        "50",
        "--close-timeout-ms",
        "200",
    ]);
    let mut slow = Vec::new();
    for n in 1..=60 {
        let Ok(mut stream) = TcpStream::connect(server.addr) else {
            continue;
        };
        let head = b"POST /send HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx";
        if stream.write_all(head).is_ok() {
            slow.push(stream);
        }
        // Each is reading its body before the next comes (the log says so
        // at debug), so what is counted is bodies, not heads not yet read.
        let reading = |log: String| log.matches("=> ReadingBody").count();
        assert!(wait_until(DEADLINE, || reading(server.log()) >= n.min(50)));
    }
    server.wait_for_log("connections still handshaking, the oldest makes room");
    // Cut ones linger out in `--close-timeout-ms`; then a real client is in.
    assert!(wait_until(DEADLINE, || {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream
            .write_all(upgrade_request("/chat").as_bytes())
            .unwrap();
        let head = read_response(&mut stream, true);
        head.starts_with(b"HTTP/1.1 101 ")
    }));
    let mut first = slow.swap_remove(0);
    first.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut answer = Vec::new();
    let _ = first.read_to_end(&mut answer);
    // Cut before its body was read, or while it was being read.
    let (_, body) = assert_whole_response(&answer, "HTTP/1.1 408 Request Timeout");
    assert!(body.ends_with("not completed in time\n"), "{body:?}");
}
