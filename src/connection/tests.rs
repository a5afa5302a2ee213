use super::*;
use crate::session::ConnState;
use std::time::Duration;

/// A connection on the accepting side of a loopback pair, and the client's end.
fn pair() -> (Connection, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, peer) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    let conn = Connection::new(
        Token(7),
        TcpStream::from_std(accepted),
        peer,
        Instant::now(),
    );
    (conn, client)
}

/// Waits until `n` bytes can be read from the connection's socket.
fn wait_readable(conn: &Connection, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut peek = vec![0; n];
    while conn.socket.peek(&mut peek).unwrap_or(0) < n {
        assert!(Instant::now() < deadline, "bytes never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_full_read_says_more_may_follow_and_takes_one_scratch_only() {
    let (mut conn, mut client) = pair();
    client.write_all(&[b'a'; 1000]).unwrap();
    wait_readable(&conn, 1000);
    let mut scratch = [0; 16];
    assert!(matches!(
        conn.read_once(&mut scratch, true),
        ReadOutcome::More
    ));
    // Still handshaking: the session holds the bytes read, unparsed.
    assert_eq!(conn.session.state(), ConnState::Handshaking);
    let mut rest = [0; 1000];
    let left = conn.socket.peek(&mut rest).unwrap();
    assert_eq!(left, 1000 - scratch.len());
}

#[test]
fn a_short_read_means_drained_unless_a_fin_may_follow() {
    let (mut conn, mut client) = pair();
    client.write_all(b"hello").unwrap();
    wait_readable(&conn, 5);
    let mut scratch = [0; 64];
    assert!(matches!(
        conn.read_once(&mut scratch, true),
        ReadOutcome::Drained
    ));
    client.write_all(b" world").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    wait_readable(&conn, 6);
    // The event said the peer closed: a short read says "more", and the
    // next read finds the FIN.
    assert!(matches!(
        conn.read_once(&mut scratch, false),
        ReadOutcome::More
    ));
    assert!(matches!(
        conn.read_once(&mut scratch, false),
        ReadOutcome::PeerClosed
    ));
}

#[test]
fn a_flush_writes_the_session_output_and_half_closes_when_it_lingers() {
    let (mut conn, mut client) = pair();
    let now = Instant::now();
    conn.session.answer(b"HTTP/1.1 404 Not Found\r\n\r\n", now);
    let mut history = History::new("e".into(), 1000, 10);
    let flushed = conn.flush(&mut history, &Config::default(), now);
    assert!(matches!(flushed, FlushOutcome::Done));
    let mut answer = Vec::new();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // read_to_end ends only at the FIN the flush sent after the answer.
    client.read_to_end(&mut answer).unwrap();
    assert_eq!(answer, b"HTTP/1.1 404 Not Found\r\n\r\n");
}
