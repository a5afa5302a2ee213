//! Limits: slow consumers, floods, connection caps, descriptor exhaustion and
//! shutdown. In each, the healthy clients must get everything they are owed.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// Tests here open many sockets or move many megabytes: one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A payload that names its sender and sequence number, padded to `len`.
fn numbered(sender: u8, seq: u32, len: usize) -> Vec<u8> {
    let mut payload = vec![b'.'; len];
    payload[0] = sender;
    payload[1..5].copy_from_slice(&seq.to_be_bytes());
    payload
}

#[test]
fn a_reader_that_never_reads_is_dropped_after_the_stall_and_memory_stays_bounded() {
    let _heavy = heavy();
    const MESSAGES: u32 = 320; // 320 × 64 KiB = 20 MiB
    const SIZE: usize = 64 * 1024;
    const WINDOW: u32 = 8; // the sender stays at most 8 messages ahead of the reader
    let server = ServerProcess::start(&["--history-bytes", "4194304", "--stall-ms", "1000"]);
    let baseline_kib = server.rss_kib();
    let mut stalled = RawClient::connect(server.addr, "/chat");
    let mut sender = RawClient::connect(server.addr, "/chat");
    let mut reader = RawClient::connect(server.addr, "/chat");
    for client in [&mut stalled, &mut sender, &mut reader] {
        client.skip_welcome();
    }
    let received = Arc::new(AtomicUsize::new(0));
    let seen = received.clone();
    let reading = std::thread::spawn(move || {
        for seq in 0..MESSAGES {
            let message = reader.read_message();
            assert_eq!(
                message.payload,
                numbered(b'S', seq, SIZE),
                "message {seq} lost or out of order"
            );
            seen.fetch_add(1, Ordering::SeqCst);
        }
        reader
    });
    for seq in 0..MESSAGES {
        let in_flight = || seq as usize - received.load(Ordering::SeqCst);
        assert!(
            wait_until(DEADLINE, || in_flight() < WINDOW as usize),
            "the reader stopped receiving at {seq}"
        );
        sender.send(&client_frame(true, BINARY, &numbered(b'S', seq, SIZE)));
    }
    let _reader = reading.join().expect("the healthy reader missed messages");
    let peak_kib = server.peak_rss_kib();
    let stalled_peer = stalled.stream.local_addr().unwrap();
    server.wait_for_left(
        stalled_peer,
        "Chat",
        "dropped by server",
        1008,
        "slow consumer",
    );
    server.wait_for_status(2);
    // The stalled client finds its connection gone once it drains what the kernel held.
    stalled.stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut sink = vec![0u8; 1 << 20];
    loop {
        match stalled.stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the slow consumer was never dropped: {e}"),
        }
    }
    // 20 MiB went through; the log holds at most 4 MiB and one message
    // more. 12 MiB over the baseline would mean the log was not bounded:
    // what the stalled client pinned (all 20 MiB after the first few
    // messages) would pile up. The peak is the kernel's VmHWM, so no moment
    // of the run is missed.
    let grown_kib = peak_kib.saturating_sub(baseline_kib);
    eprintln!("RSS baseline {baseline_kib} KiB, peak {peak_kib} KiB");
    assert!(
        grown_kib < 12 * 1024,
        "RSS grew by {grown_kib} KiB while relaying 20 MiB"
    );
}

/// Reads one connection may get per turn: `READS_PER_TURN` (4, src/connection.rs)
/// reads of `READ_CHUNK` (64 KiB, src/server.rs).
const READ_BUDGET_BYTES: usize = 4 * 64 * 1024;

#[test]
fn a_flooding_sender_does_not_hold_up_a_second_sender() {
    let _heavy = heavy();
    const FLOOD: u32 = 300; // 300 × 64 KiB ≈ 19 MiB, sent as fast as the server takes it
    const SIZE: usize = 64 * 1024;
    // One flood frame on the wire: 64 KiB of payload, 2 + 8 bytes of header, 4 of mask.
    const FRAME: usize = SIZE + 14;
    // The polite message may follow at most N flood messages. The server is
    // frozen (SIGSTOP) while the flood piles up in its socket and the polite
    // message arrives, so when it wakes both sockets are readable at once and
    // it has read none of the flood. With the budget, the flooder gets one
    // share per turn, READ_BUDGET_BYTES (256 KiB: 3 whole frames, not 4),
    // and is read once per turn: if its event comes first, one share goes
    // before the polite client's event; if not, the polite message goes
    // first. N is one share plus the frame cut by it. Measured: 3 with the
    // budget; 7 when the backlog also read the flooder a second time in its
    // first turn; 15 with a budget of 16 reads; 20 to all 300 (the message
    // after the flood) with no budget or reading until WouldBlock.
    const N: usize = READ_BUDGET_BYTES / FRAME + 1;
    // A generous buffer bound: this test is about fairness, not slow consumers.
    let server = ServerProcess::start(&[
        "--max-buffered-bytes",
        "268435456",
        "--max-message-bytes",
        "70000",
    ]);
    let mut flooder = RawClient::connect(server.addr, "/chat");
    let mut polite = RawClient::connect(server.addr, "/chat");
    let mut reader = RawClient::connect(server.addr, "/chat");
    for client in [&mut flooder, &mut polite, &mut reader] {
        client.skip_welcome();
    }
    // Everyone in the room reads: a client that does not would (rightly)
    // hold the flood back, and this test is about fairness.
    let mut polite_ear = polite.stream.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut sink = vec![0u8; 1 << 16];
        while polite_ear.read(&mut sink).is_ok_and(|n| n > 0) {}
    });
    // A warm-up of 100 messages lets the kernel grow the flooder's socket
    // buffers as it would during a long flood.
    for seq in 0..100 {
        flooder.send(&client_frame(true, BINARY, &numbered(b'W', seq, SIZE)));
    }
    for _ in 0..100 {
        assert_eq!(reader.read_message().payload[0], b'W');
    }
    // Frames built beforehand, so the flooder writes faster than the server reads.
    let frames: Vec<Vec<u8>> = (0..FLOOD)
        .map(|seq| client_frame(true, BINARY, &numbered(b'F', seq, SIZE)))
        .collect();
    server.signal("STOP");
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let flood = std::thread::spawn(move || {
        for frame in frames {
            flooder.send(&frame);
            counter.fetch_add(1, Ordering::SeqCst);
        }
        flooder
    });
    // Let the kernel's buffers fill: wait until the flooder has made no
    // progress for 100 ms. (Stopping early only makes the test weaker, never
    // wrong: the server has read nothing of the flood either way.)
    let mut last = usize::MAX;
    let stalled = wait_until(DEADLINE, || {
        std::thread::sleep(Duration::from_millis(100));
        let now = written.load(Ordering::SeqCst);
        std::mem::replace(&mut last, now) == now
    });
    assert!(
        stalled,
        "the flooder never stopped while the server was frozen"
    );
    assert!(
        last > 2 * N,
        "only {last} flood messages were queued: too few for an unfair server to show"
    );
    polite.send(&client_frame(true, BINARY, &numbered(b'P', 0, 10)));
    server.signal("CONT");
    let mut flood_seen = 0;
    let mut polite_after = None;
    while flood_seen < FLOOD as usize {
        let message = reader.read_message();
        match message.payload[0] {
            b'F' => {
                assert_eq!(message.payload, numbered(b'F', flood_seen as u32, SIZE));
                flood_seen += 1;
            }
            b'P' => polite_after = Some(flood_seen),
            other => panic!("unexpected sender {other}"),
        }
    }
    let _flooder = flood.join().unwrap();
    let position =
        polite_after.expect("the polite message was not delivered while the flood lasted");
    eprintln!(
        "the polite message arrived after {position} of {FLOOD} flood messages ({last} queued)"
    );
    assert!(
        position <= N,
        "the polite message waited for {position} flood messages (at most {N} with a fair share)"
    );
}

#[test]
fn past_max_connections_a_new_client_gets_503_and_the_others_keep_chatting() {
    let _heavy = heavy();
    let server = ServerProcess::start(&["--max-connections", "50"]);
    let mut clients: Vec<RawClient> = (0..50)
        .map(|_| RawClient::connect(server.addr, "/chat"))
        .collect();
    for client in clients.iter_mut() {
        client.skip_welcome();
    }
    let refused = http_request(server.addr, &upgrade_request("/chat"));
    assert!(
        refused.starts_with("HTTP/1.1 503 Service Unavailable"),
        "{refused:?}"
    );
    assert!(refused.ends_with("connection limit\n"), "{refused:?}");
    clients[0].send_text("all fifty of us");
    for client in clients.iter_mut().skip(1) {
        assert_eq!(client.read_text(), "all fifty of us");
    }
    // After one leaves, a newcomer fits again.
    drop(clients.pop());
    assert!(wait_until(DEADLINE, || http_request(
        server.addr,
        "GET /status HTTP/1.1\r\n\r\n"
    )
    .starts_with("HTTP/1.1 200")));
}

#[test]
fn out_of_descriptors_the_server_keeps_serving_without_spinning_and_recovers() {
    let _heavy = heavy();
    let mut command = std::process::Command::new("prlimit");
    command.args(["--nofile=40:40", env!("CARGO_BIN_EXE_miochat")]);
    let server = ServerProcess::start_with(command, &[]);
    // Fill the table with open chat clients until the server starts refusing.
    let mut clients = Vec::new();
    let mut refusals = 0;
    for _ in 0..60 {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream
            .write_all(upgrade_request("/chat").as_bytes())
            .unwrap();
        let mut head = [0u8; 12];
        match stream.read_exact(&mut head) {
            Ok(()) if head.starts_with(b"HTTP/1.1 101") => {
                let mut client = RawClient::from_upgraded(stream);
                client.skip_welcome();
                clients.push(client);
            }
            Ok(()) if head.starts_with(b"HTTP/1.1 503") => refusals += 1,
            other => panic!(
                "unexpected answer {other:?} {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    assert!(
        refusals > 0 && clients.len() > 20,
        "{} served, {refusals} refused",
        clients.len()
    );
    server.wait_for_log("refusing new connections with 503");
    // No spinning on the listener while descriptors are short.
    let before = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = server.cpu_ticks() - before;
    assert!(
        used <= 10,
        "server used {used} ticks in an idle second while out of descriptors"
    );
    // The clients it has are served.
    clients[0].send_text("still served");
    assert_eq!(clients[1].read_text(), "still served");
    // Some leave; a newcomer is accepted again.
    clients.truncate(clients.len() - 5);
    assert!(wait_until(DEADLINE, || {
        let response = http_request(server.addr, "GET /status HTTP/1.1\r\n\r\n");
        response.starts_with("HTTP/1.1 200")
    }));
    let mut newcomer = RawClient::connect(server.addr, "/chat");
    newcomer.skip_welcome();
    server.wait_for_log("accepting connections again");
}

#[test]
fn sigterm_sends_1001_to_everyone_and_exits_0_when_the_close_timeout_ends() {
    let _heavy = heavy();
    const CLOSE_TIMEOUT: Duration = Duration::from_millis(1500);
    // Slack for the timer's tick (10 ms), spawning `kill`, exiting and a busy
    // machine. It stays under one close timeout, so a server that waited
    // twice as long (a second round of timers, say) would fail.
    const SLACK: Duration = Duration::from_millis(1000);
    let mut server =
        ServerProcess::start(&["--close-timeout-ms", &CLOSE_TIMEOUT.as_millis().to_string()]);
    let mut polite = RawClient::connect(server.addr, "/chat");
    let mut deaf = RawClient::connect(server.addr, "/chat");
    polite.skip_welcome();
    deaf.skip_welcome();
    server.wait_for_status(2);
    let signalled = Instant::now();
    server.signal("TERM");
    // The polite client answers the close; the deaf one never does.
    let close = polite.read_frame().unwrap();
    assert_eq!(close.close_code(), Some(1001));
    assert_eq!(&close.payload[2..], b"server shutting down");
    polite.send(&client_frame(true, CLOSE, &1001u16.to_be_bytes()));
    polite.expect_eof();
    let close = deaf.read_frame().unwrap();
    assert_eq!(close.close_code(), Some(1001));
    let exit = server.wait_exit(DEADLINE);
    let waited = signalled.elapsed();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(
        waited >= CLOSE_TIMEOUT,
        "did not wait for the deaf client: {waited:?}"
    );
    assert!(
        waited <= CLOSE_TIMEOUT + SLACK,
        "exited {waited:?} after the signal, long after the close timeout"
    );
    assert!(server.log().contains("shutdown complete"));
}

#[test]
fn sigint_sends_1001_to_everyone_and_exits_0_once_they_have_closed() {
    // A close timeout far beyond the deadline: exiting in time proves the
    // server left because every client closed, not because it gave up.
    let mut server = ServerProcess::start(&["--close-timeout-ms", "60000"]);
    let mut clients = [
        RawClient::connect(server.addr, "/chat"),
        RawClient::connect(server.addr, "/echo"),
    ];
    clients[0].skip_welcome();
    server.wait_for_status(2);
    server.signal("INT");
    for client in clients.iter_mut() {
        let close = client
            .read_frame()
            .expect("the server closed without a Close frame");
        assert_eq!(close.close_code(), Some(1001), "{close:?}");
        assert_eq!(&close.payload[2..], b"server shutting down");
        client.send(&client_frame(true, CLOSE, &1001u16.to_be_bytes()));
        client.expect_eof();
    }
    let exit = server.wait_exit(DEADLINE);
    assert!(exit.success(), "exit status {exit:?}");
    assert!(server.log().contains("shutdown complete"));
}

#[test]
fn a_second_signal_during_shutdown_exits_0_without_waiting() {
    // `Server::on_signal`: a signal while shutting down exits at once, with 0.
    let mut server = ServerProcess::start(&["--close-timeout-ms", "60000"]);
    let mut deaf = RawClient::connect(server.addr, "/chat");
    deaf.skip_welcome();
    server.signal("INT");
    // Shutdown has begun (the 1001 is out); the deaf client would hold it for a minute.
    assert_eq!(
        deaf.read_frame()
            .expect("the server closed without a Close frame")
            .close_code(),
        Some(1001)
    );
    server.signal("INT");
    let exit = server.wait_exit(DEADLINE);
    assert!(exit.success(), "exit status {exit:?}");
    server.wait_for_log("second signal");
}

#[test]
fn a_client_still_handshaking_at_shutdown_gets_a_whole_503_even_if_it_reads_late() {
    let mut server = ServerProcess::start(&["--close-timeout-ms", "2000"]);
    let mut halfway = TcpStream::connect(server.addr).unwrap();
    halfway.set_read_timeout(Some(DEADLINE)).unwrap();
    let request = upgrade_request("/chat");
    halfway
        .write_all(&request.as_bytes()[..request.len() / 2])
        .unwrap();
    server.wait_for_log(&format!("accepted {}", halfway.local_addr().unwrap()));
    server.signal("TERM");
    // The client reads only later: the answer must still be there, then a
    // FIN, not a reset that would destroy it.
    std::thread::sleep(Duration::from_millis(500));
    let response = read_to_eof(&mut halfway);
    assert_whole_response(&response, "HTTP/1.1 503 Service Unavailable\r\n");
    drop(halfway);
    let exit = server.wait_exit(DEADLINE);
    assert!(exit.success(), "exit status {exit:?}");
}

/// The most a server that keeps `--max-buffered-bytes` may grow by for one
/// flooding client, in KiB. Its write buffer is checked against the limit
/// after each message or each turn's reads, so it can exceed it by one
/// turn's input (READ_BUDGET_BYTES of pings makes as many bytes of pongs) or
/// one frame; doubled, since a `Vec` grows by doubling. Its read buffer holds
/// at most one turn's input and a frame. Plus 4 MiB for the allocator and
/// the debug build. Measured: about 2.3 MiB of growth for a bound near 7 MiB;
/// with the limit checked at 16 times its value, 17 MiB.
fn peak_bound_kib(max_buffered: usize, largest_frame: usize) -> u64 {
    let write_buf = 2 * (max_buffered + READ_BUDGET_BYTES + largest_frame);
    let read_buf = READ_BUDGET_BYTES + largest_frame;
    ((write_buf + read_buf) / 1024 + 4 * 1024) as u64
}

/// What the flooding tests send at most: far past any bound above, so a
/// server that ignored `--max-buffered-bytes` would hold tens of MiB (the
/// kernel buffers at most a few MiB of it each way: `tcp_wmem` tops out at 4 MiB).
const FLOOD_CAP: usize = 64 << 20;
const MAX_BUFFERED: usize = 1 << 20;

/// Sends `frame` over and over without ever reading, until the server drops
/// us as a slow consumer; checks the log says so, with code 1008.
fn flood_without_reading(server: &ServerProcess, path: &str, frame: &[u8]) {
    let mut client = RawClient::connect(server.addr, path);
    let peer = client.stream.local_addr().unwrap();
    client.stream.set_write_timeout(Some(DEADLINE)).unwrap();
    let mut sent = 0;
    while sent < FLOOD_CAP {
        match client.stream.write_all(frame) {
            Ok(()) => sent += frame.len(),
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
                break;
            }
            Err(e) => panic!("write failed oddly after {sent} bytes: {e}"),
        }
    }
    let endpoint = if path == "/echo" { "Echo" } else { "Chat" };
    server.wait_for_left(peer, endpoint, "dropped by server", 1008, "slow consumer");
}

#[test]
fn an_echo_client_that_never_reads_is_dropped_too() {
    let _heavy = heavy();
    let server = ServerProcess::start(&["--max-buffered-bytes", &MAX_BUFFERED.to_string()]);
    let baseline_kib = server.rss_kib();
    let frame = client_frame(true, BINARY, &[7; 60_000]);
    flood_without_reading(&server, "/echo", &frame);
    let peak_kib = server.peak_rss_kib();
    let bound_kib = peak_bound_kib(MAX_BUFFERED, frame.len());
    eprintln!("RSS baseline {baseline_kib} KiB, peak {peak_kib} KiB, bound +{bound_kib} KiB");
    assert!(
        peak_kib.saturating_sub(baseline_kib) <= bound_kib,
        "RSS peaked {} KiB over the baseline (bound {bound_kib})",
        peak_kib.saturating_sub(baseline_kib)
    );
}

#[test]
fn a_ping_flood_from_a_client_that_never_reads_is_dropped() {
    let _heavy = heavy();
    let server = ServerProcess::start(&["--max-buffered-bytes", &MAX_BUFFERED.to_string()]);
    let baseline_kib = server.rss_kib();
    let pings: Vec<u8> = (0..100)
        .flat_map(|_| client_frame(true, PING, &[b'p'; 125]))
        .collect();
    flood_without_reading(&server, "/echo", &pings);
    // The pongs pile up in the write buffer; one turn's reads of pings adds
    // at most READ_BUDGET_BYTES of pongs before the check runs.
    let peak_kib = server.peak_rss_kib();
    let bound_kib = peak_bound_kib(MAX_BUFFERED, 131);
    eprintln!("RSS baseline {baseline_kib} KiB, peak {peak_kib} KiB, bound +{bound_kib} KiB");
    assert!(
        peak_kib.saturating_sub(baseline_kib) <= bound_kib,
        "RSS peaked {} KiB over the baseline (bound {bound_kib})",
        peak_kib.saturating_sub(baseline_kib)
    );
    let mut other = RawClient::connect(server.addr, "/echo");
    other.send_text("unharmed");
    assert_eq!(other.read_text(), "unharmed");
}
