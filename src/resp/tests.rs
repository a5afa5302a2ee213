//! Golden bytes for RESP2 (the examples of the Redis docs' protocol page),
//! every reply fed one byte at a time, and the garbage a broken server may send.

use super::*;

fn decode_all(bytes: &[u8]) -> Result<Option<(Reply, usize)>, RespError> {
    decode(bytes, &Limits::default())
}

fn bulk(b: &[u8]) -> Reply {
    Reply::Bulk(Some(b.to_vec()))
}

/// Decodes `bytes` whole, and checks that every proper prefix of it is
/// `Ok(None)`: a reply cut anywhere asks for more and consumes nothing.
fn golden(bytes: &[u8], expected: Reply) {
    for cut in 0..bytes.len() {
        assert_eq!(
            decode_all(&bytes[..cut]),
            Ok(None),
            "prefix of {cut} bytes of {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    let mut with_more = bytes.to_vec();
    with_more.extend_from_slice(b"+NEXT\r\n");
    assert_eq!(decode_all(&with_more), Ok(Some((expected, bytes.len()))));
}

// ---- commands ----

#[test]
fn a_command_is_an_array_of_bulk_strings() {
    let mut out = Vec::new();
    encode_command(&mut out, &["SELECT", "1"]);
    assert_eq!(out, b"*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n");
    out.clear();
    encode_command(&mut out, &["SET", "mykey", "myvalue"]);
    assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$5\r\nmykey\r\n$7\r\nmyvalue\r\n");
}

#[test]
fn binary_arguments_go_as_they_are() {
    let mut out = Vec::new();
    encode_command(&mut out, &[&b"XADD"[..], &[0x81, 0x02, b'\r', b'\n']]);
    assert_eq!(out, b"*2\r\n$4\r\nXADD\r\n$4\r\n\x81\x02\r\n\r\n");
}

#[test]
fn an_empty_argument_is_a_zero_length_bulk() {
    let mut out = Vec::new();
    encode_command(&mut out, &["GET", ""]);
    assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
}

// ---- replies, golden ----

#[test]
fn simple_strings_errors_and_integers() {
    golden(b"+OK\r\n", Reply::Simple("OK".into()));
    golden(
        b"-NOSCRIPT No matching script. Please use EVAL.\r\n",
        Reply::Error("NOSCRIPT No matching script. Please use EVAL.".into()),
    );
    golden(b":1000\r\n", Reply::Integer(1000));
    golden(b":-3\r\n", Reply::Integer(-3));
    golden(b"+\r\n", Reply::Simple(String::new()));
}

#[test]
fn bulk_strings_with_the_empty_and_the_null_one() {
    golden(b"$5\r\nhello\r\n", bulk(b"hello"));
    golden(b"$0\r\n\r\n", bulk(b""));
    golden(b"$-1\r\n", Reply::Bulk(None));
    // A payload may hold CRLF: its length, not a line end, says where it stops.
    golden(b"$4\r\n\r\n\r\n\r\n", bulk(b"\r\n\r\n"));
}

#[test]
fn arrays_empty_null_mixed_and_nested() {
    golden(b"*0\r\n", Reply::Array(Some(vec![])));
    golden(b"*-1\r\n", Reply::Array(None));
    golden(
        b"*3\r\n:1\r\n$3\r\nfoo\r\n$-1\r\n",
        Reply::Array(Some(vec![
            Reply::Integer(1),
            bulk(b"foo"),
            Reply::Bulk(None),
        ])),
    );
    golden(
        b"*2\r\n*1\r\n+a\r\n*0\r\n",
        Reply::Array(Some(vec![
            Reply::Array(Some(vec![Reply::Simple("a".into())])),
            Reply::Array(Some(vec![])),
        ])),
    );
}

/// `XREAD ... STREAMS room 0-41` answered with one entry (Redis docs, XREAD:
/// an array of [stream, [[id, [field, value, ...]], ...]]).
#[test]
fn an_xread_reply_nests_four_deep() {
    let bytes =
        b"*1\r\n*2\r\n$4\r\nroom\r\n*1\r\n*2\r\n$4\r\n0-42\r\n*2\r\n$1\r\nn\r\n$3\r\nann\r\n";
    let entry = Reply::Array(Some(vec![
        bulk(b"0-42"),
        Reply::Array(Some(vec![bulk(b"n"), bulk(b"ann")])),
    ]));
    golden(
        bytes,
        Reply::Array(Some(vec![Reply::Array(Some(vec![
            bulk(b"room"),
            Reply::Array(Some(vec![entry])),
        ]))])),
    );
}

#[test]
fn two_replies_in_one_read_come_out_one_at_a_time() {
    let bytes = b"+OK\r\n:7\r\n";
    let (first, used) = decode_all(bytes).unwrap().unwrap();
    assert_eq!((first, used), (Reply::Simple("OK".into()), 5));
    assert_eq!(decode_all(&bytes[used..]), Ok(Some((Reply::Integer(7), 4))));
}

// ---- garbage ----

#[test]
fn garbage_is_refused_with_the_rule_it_breaks() {
    let cases: [(&[u8], RespError); 10] = [
        (b"HTTP/1.1 200 OK\r\n", RespError::UnknownType(b'H')),
        (b"+OK\n", RespError::BadLineEnd),
        (b"+OK\rX", RespError::BadLineEnd),
        (b"\r\n", RespError::BadLineEnd),
        (b":12a\r\n", RespError::BadNumber),
        (b":\r\n", RespError::BadNumber),
        (b"$-2\r\n", RespError::BadNumber),
        (b"*-7\r\n", RespError::BadNumber),
        (b"$3\r\nabcde", RespError::BadBulkEnd),
        (b":99999999999999999999\r\n", RespError::BadNumber),
    ];
    for (bytes, error) in cases {
        assert_eq!(
            decode_all(bytes),
            Err(error),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn a_line_without_an_end_is_refused_past_the_longest_line() {
    let mut long = b"+".to_vec();
    long.extend(std::iter::repeat_n(b'x', MAX_LINE));
    assert_eq!(decode_all(&long), Ok(None));
    long.extend_from_slice(b"xx");
    assert_eq!(decode_all(&long), Err(RespError::LineTooLong));
}

// ---- limits ----

#[test]
fn a_huge_announced_bulk_is_refused_before_anything_is_held() {
    let limits = Limits {
        max_bulk: 10,
        ..Limits::default()
    };
    assert_eq!(decode(b"$11\r\n", &limits), Err(RespError::BulkTooLong(11)));
    assert_eq!(decode(b"$10\r\n", &limits), Ok(None));
    assert_eq!(
        decode(b"$9223372036854775807\r\n", &Limits::default()),
        Err(RespError::BulkTooLong(i64::MAX))
    );
}

#[test]
fn a_reply_longer_than_the_limit_is_refused_whole_or_unfinished() {
    let limits = Limits {
        max_reply: 12,
        ..Limits::default()
    };
    // Each part is within its limit; together they are not.
    assert_eq!(
        decode(b"*3\r\n:1\r\n:2\r\n:3\r\n", &limits),
        Err(RespError::ReplyTooLong)
    );
    assert_eq!(
        decode(b"*3\r\n:1\r\n:2\r\n:", &limits),
        Err(RespError::ReplyTooLong)
    );
    assert_eq!(
        decode(b"*2\r\n:1\r\n:2\r\n", &limits).unwrap().unwrap().1,
        12
    );
    // Garbage past the limit is judged as too long, whole or in pieces (a
    // case the fuzzer found: a type byte 0 was refused when read whole, the
    // length when read byte by byte).
    let mut zeros = vec![0u8; 20];
    zeros.extend_from_slice(b"\r\n");
    assert_eq!(decode(&zeros, &limits), Err(RespError::ReplyTooLong));
    assert_eq!(decode(&zeros[..13], &limits), Err(RespError::ReplyTooLong));
    assert_eq!(decode(&zeros[..5], &limits), Ok(None));
}

#[test]
fn too_many_elements_or_too_deep_arrays_are_refused() {
    let limits = Limits {
        max_elements: 3,
        max_depth: 2,
        ..Limits::default()
    };
    assert_eq!(decode(b"*4\r\n", &limits), Err(RespError::TooManyElements));
    // Counted across nested arrays: 2 + 2 > 3.
    assert_eq!(
        decode(b"*2\r\n*2\r\n:1\r\n:2\r\n", &limits),
        Err(RespError::TooManyElements)
    );
    assert_eq!(
        decode(b"*1\r\n*1\r\n*1\r\n", &limits),
        Err(RespError::TooDeep)
    );
    assert_eq!(
        decode(b"*1\r\n*1\r\n:5\r\n", &limits).unwrap().unwrap().1,
        12
    );
}
