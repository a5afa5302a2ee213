//! Time: heartbeats reap silent peers, slow handshakes and unanswered closes
//! are cut off. Intervals are short and windows wide: a test asserts "never
//! early, and within a generous bound", not an exact moment.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const HEARTBEAT_MS: u64 = 200;

/// Reads (and ignores) everything until the server closes the connection.
fn read_until_eof(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) => panic!("still open at the deadline: {e}"),
        }
    }
}

#[test]
fn a_client_that_ignores_pings_is_reaped_within_two_intervals() {
    // The heartbeat pings after one interval and reaps after the second, if
    // nothing came back. A long interval keeps the slack below one interval:
    // the slack covers the timer's 10 ms tick, a busy machine and the debug
    // build, and a server that waited a third interval would exceed it.
    const INTERVAL: Duration = Duration::from_millis(1000);
    const SLACK: Duration = Duration::from_millis(600);
    let server = ServerProcess::start(&["--heartbeat-ms", &INTERVAL.as_millis().to_string()]);
    // Timed from before the upgrade, so the server's timers cannot start earlier.
    let started = Instant::now();
    let mut client = RawClient::connect(server.addr, "/chat");
    let peer = client.stream.local_addr().unwrap();
    // Read frames but never answer: the first is the welcome, then pings.
    let mut pings = 0;
    while let Some(frame) = client.read_frame() {
        pings += usize::from(frame.opcode == PING);
    }
    let elapsed = started.elapsed();
    assert_eq!(pings, 1, "one ping, then the reaping");
    assert!(elapsed >= 2 * INTERVAL, "reaped too early: {elapsed:?}");
    assert!(elapsed <= 2 * INTERVAL + SLACK, "reaped late: {elapsed:?}");
    server.wait_for_left(peer, "Chat", "reaped by heartbeat", 1006, "no pong");
    server.wait_for_status(0);
}

#[test]
fn a_client_that_answers_pings_stays_for_five_intervals() {
    let server = ServerProcess::start(&["--heartbeat-ms", &HEARTBEAT_MS.to_string()]);
    let mut client = RawClient::connect(server.addr, "/echo");
    let until = Instant::now() + Duration::from_millis(5 * HEARTBEAT_MS);
    let mut pongs = 0;
    while Instant::now() < until {
        // Nothing within 50 ms is no news; the server closing would panic.
        match client.poll_frame(Duration::from_millis(50)) {
            Some(frame) if frame.opcode == PING => {
                client.send(&client_frame(true, PONG, &frame.payload));
                pongs += 1;
            }
            Some(frame) => panic!("unexpected frame {frame:?}"),
            None => {}
        }
    }
    assert!(pongs >= 3, "only {pongs} pings in 5 intervals");
    client.send_text("still here");
    assert_eq!(client.read_text(), "still here");
    assert!(!server.log().contains("reaped"));
}

#[test]
fn a_slow_loris_is_cut_off_while_another_client_chats_undisturbed() {
    let server = ServerProcess::start(&["--handshake-timeout-ms", "500"]);
    let mut loris = TcpStream::connect(server.addr).unwrap();
    loris.set_read_timeout(Some(DEADLINE)).unwrap();
    let started = Instant::now();
    let mut echo = RawClient::connect(server.addr, "/echo");
    let request = upgrade_request("/chat");
    let mut bytes = request.bytes();
    let mut round_trips = 0;
    // One byte every 50 ms would take ~7 s; the server gives it 500 ms.
    let closed_after = loop {
        if let Some(byte) = bytes.next()
            && loris.write_all(&[byte]).is_err()
        {
            break started.elapsed();
        }
        echo.send_text(&format!("ping {round_trips}"));
        assert_eq!(echo.read_text(), format!("ping {round_trips}"));
        round_trips += 1;
        loris
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut answer = [0u8; 256];
        match loris.read(&mut answer) {
            Ok(0) => break started.elapsed(),
            Ok(n) => {
                let text = String::from_utf8_lossy(&answer[..n]).into_owned();
                assert!(text.starts_with("HTTP/1.1 408"), "{text}");
                read_until_eof(&mut loris);
                break started.elapsed();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break started.elapsed(),
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the slow client was never cut off"
        );
    };
    assert!(
        closed_after >= Duration::from_millis(500),
        "cut off before the timeout: {closed_after:?}"
    );
    assert!(
        round_trips >= 5,
        "the other client was held up: {round_trips} round trips"
    );
    server.wait_for_log("handshake timed out");
}

#[test]
fn a_handshake_timeouts_408_arrives_whole_at_a_client_that_reads_late() {
    const HANDSHAKE_TIMEOUT_MS: u64 = 300;
    let server =
        ServerProcess::start(&["--handshake-timeout-ms", &HANDSHAKE_TIMEOUT_MS.to_string()]);
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.set_read_timeout(Some(DEADLINE)).unwrap();
    let request = upgrade_request("/chat");
    slow.write_all(&request.as_bytes()[..request.len() / 2])
        .unwrap();
    // Past the timeout, then half a second more before the first read: the
    // answer must wait for us, followed by a FIN, not a reset.
    std::thread::sleep(Duration::from_millis(HANDSHAKE_TIMEOUT_MS + 500));
    let response = read_to_eof(&mut slow);
    assert_whole_response(&response, "HTTP/1.1 408 Request Timeout\r\n");
    server.wait_for_log("handshake timed out");
}

#[test]
fn a_client_that_never_answers_our_close_is_dropped_after_the_close_timeout() {
    let server = ServerProcess::start(&["--close-timeout-ms", "300"]);
    let mut client = RawClient::connect(server.addr, "/echo");
    // An unmasked frame fails the connection: the server sends 1002 and half-closes...
    client.send(&[0x81, 0x01, b'x']);
    let sent = Instant::now();
    client.expect_close(1002);
    // ...but we keep our side open and never send a Close back.
    server.wait_for_log("failed by server, code 1002");
    let dropped_after = sent.elapsed();
    assert!(
        dropped_after >= Duration::from_millis(300),
        "dropped before the close timeout: {dropped_after:?}"
    );
    server.wait_for_status(0);
}

#[test]
fn an_idle_server_sleeps_in_poll() {
    let server = ServerProcess::start(&[]);
    let _idle = RawClient::connect(server.addr, "/echo");
    let before = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = server.cpu_ticks() - before;
    // A spinning loop burns ~100 ticks a second; a sleeping one, none.
    assert!(used <= 5, "idle server used {used} ticks in one second");
}
