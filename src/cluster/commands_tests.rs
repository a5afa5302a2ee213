//! Golden bytes for every command miochat sends to Redis, and the stream
//! entries read from Redis's replies.

use super::*;
use crate::resp::{Limits, decode};

fn bulk(b: &[u8]) -> Reply {
    Reply::Bulk(Some(b.to_vec()))
}

#[test]
fn select_and_script_load_as_bytes() {
    let mut out = Vec::new();
    select(&mut out, 2);
    assert_eq!(out, b"*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n");
    out.clear();
    load_append_script(&mut out);
    let head = format!(
        "*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n${}\r\n",
        APPEND_SCRIPT.len()
    );
    assert!(out.starts_with(head.as_bytes()));
    assert!(out.ends_with(b"return id\r\n"));
}

#[test]
fn hello_passes_the_keys_the_offered_epoch_and_the_last_id() {
    let mut out = Vec::new();
    hello(&mut out, "e1", 41);
    let tail = b"$1\r\n2\r\n$18\r\nmiochat:room:epoch\r\n$20\r\nmiochat:room:counter\r\n$2\r\ne1\r\n$2\r\n41\r\n";
    assert!(out.starts_with(b"*7\r\n$4\r\nEVAL\r\n"));
    assert!(out.ends_with(tail), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn an_append_is_one_evalsha_with_everything_the_script_needs() {
    let mut out = Vec::new();
    let a = Append {
        process: "p1",
        seq: 7,
        max_len: 100,
        from: "ann",
        frame: b"\x81\x02hi",
    };
    append(&mut out, "abc", &a);
    let expected = b"*12\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n3\r\n\
$20\r\nmiochat:room:counter\r\n$19\r\nmiochat:room:stream\r\n$20\r\nmiochat:room:seen:p1\r\n\
$2\r\np1\r\n$1\r\n7\r\n$3\r\n100\r\n$3\r\nann\r\n$4\r\n\x81\x02hi\r\n$5\r\n86400\r\n";
    assert_eq!(out, expected, "{}", String::from_utf8_lossy(&out));
}

#[test]
fn xread_blocks_after_the_last_id_and_xrange_names_both_ends() {
    let mut out = Vec::new();
    read_after(&mut out, 41, 512, 5000);
    let expected =
        b"*8\r\n$5\r\nXREAD\r\n$5\r\nCOUNT\r\n$3\r\n512\r\n$5\r\nBLOCK\r\n$4\r\n5000\r\n\
$7\r\nSTREAMS\r\n$19\r\nmiochat:room:stream\r\n$4\r\n0-41\r\n";
    assert_eq!(out, expected);
    out.clear();
    range(&mut out, 3, 9);
    assert_eq!(
        out,
        b"*4\r\n$6\r\nXRANGE\r\n$19\r\nmiochat:room:stream\r\n$3\r\n0-3\r\n$3\r\n0-9\r\n"
    );
}

/// An `XREAD` reply as Redis sends it, decoded and read as entries.
#[test]
fn an_xread_reply_gives_its_entries_in_order() {
    let bytes = b"*1\r\n*2\r\n$19\r\nmiochat:room:stream\r\n*2\r\n\
*2\r\n$4\r\n0-42\r\n*8\r\n$1\r\np\r\n$2\r\np1\r\n$1\r\nq\r\n$1\r\n7\r\n$1\r\nn\r\n$3\r\nann\r\n$1\r\nf\r\n$4\r\n\x81\x02hi\r\n\
*2\r\n$4\r\n0-43\r\n*8\r\n$1\r\nf\r\n$2\r\n\x81\x00\r\n$1\r\nn\r\n$1\r\nb\r\n$1\r\np\r\n$2\r\np2\r\n$1\r\nq\r\n$1\r\n1\r\n";
    let (reply, used) = decode(bytes, &Limits::default()).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    let entries = read_reply(&reply).unwrap();
    assert_eq!(
        entries[0],
        StreamEntry {
            id: 42,
            process: b"p1".to_vec(),
            seq: 7,
            from: "ann".into(),
            frame: b"\x81\x02hi".to_vec(),
        }
    );
    assert_eq!(
        (entries[1].id, entries[1].seq, entries[1].from.as_str()),
        (43, 1, "b")
    );
}

#[test]
fn a_timed_out_xread_is_no_entries_and_odd_shapes_are_errors() {
    assert_eq!(read_reply(&Reply::Array(None)), Ok(vec![]));
    assert!(read_reply(&Reply::Simple("OK".into())).is_err());
    let odd_id = Reply::Array(Some(vec![Reply::Array(Some(vec![
        bulk(b"1700000000000-0"),
        Reply::Array(Some(vec![])),
    ]))]));
    assert!(range_reply(&odd_id).unwrap_err().contains("0-N"));
    let no_frame = Reply::Array(Some(vec![Reply::Array(Some(vec![
        bulk(b"0-1"),
        Reply::Array(Some(vec![
            bulk(b"p"),
            bulk(b"x"),
            bulk(b"q"),
            bulk(b"1"),
            bulk(b"n"),
        ])),
    ]))]));
    assert!(range_reply(&no_frame).is_err());
}

#[test]
fn only_whole_unmasked_data_frames_pass_as_entries() {
    assert!(is_server_frame(b"\x81\x02hi"));
    assert!(is_server_frame(b"\x82\x00"));
    let mut long = vec![0x82, 126, 0x01, 0x00];
    long.extend(vec![0; 256]);
    assert!(is_server_frame(&long));
    for bad in [
        &b""[..],
        b"\x81",
        b"\x81\x03hi",
        b"\x01\x02hi",
        b"\x89\x02hi",
        b"\x81\x82hi",
        b"\x81\x02\xff\xfe",
        b"\x82\x7e\x00",
        b"\x82\x7f\x00\x00",
    ] {
        assert!(!is_server_frame(bad), "{bad:?}");
    }
}

#[test]
fn ids_are_zero_dash_n() {
    assert_eq!(parse_id(b"0-42"), Some(42));
    assert_eq!(parse_id(b"1-42"), None);
    assert_eq!(parse_id(b"0-"), None);
}
