//! The log without a socket: appends, readers' counts, eviction, the pause
//! and its end, resume points.

use std::time::{Duration, Instant};

use super::*;
use crate::frame::Opcode;
use crate::message::Message;

fn t0() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// A message of `size` bytes from token 2, named "b" (1 byte, counted too).
fn append(history: &mut History, size: usize) -> u64 {
    history.append(2, "b".into(), [vec![1; size - 1], Vec::new()], t0())
}

/// A log of at most 100 bytes and 8 messages.
fn small() -> History {
    History::new("e".into(), 100, 8)
}

#[test]
fn ids_start_at_1_and_an_empty_log_says_0() {
    let mut history = small();
    assert_eq!((history.last_id(), history.first_id()), (0, 1));
    assert_eq!(append(&mut history, 10), 1);
    assert_eq!(append(&mut history, 10), 2);
    assert_eq!(
        (history.first_id(), history.last_id(), history.bytes()),
        (1, 2, 20)
    );
}

#[test]
fn with_no_readers_the_oldest_entries_are_evicted_and_senders_never_wait() {
    let mut history = small();
    for _ in 0..50 {
        assert!(history.accepts());
        append(&mut history, 30);
    }
    assert_eq!(history.len(), 3, "100 bytes hold three 30-byte entries");
    assert_eq!(history.first_id(), 48);
    assert!(history.full_since().is_none());
}

#[test]
fn the_message_cap_evicts_too() {
    let mut history = small();
    for _ in 0..20 {
        append(&mut history, 1);
    }
    assert_eq!((history.len(), history.first_id()), (8, 13));
}

#[test]
fn an_entry_a_reader_still_needs_is_never_evicted_and_the_log_reports_full() {
    let mut history = small();
    history.join(history.last_id() + 1); // a caught-up reader, at id 1
    for _ in 0..3 {
        append(&mut history, 30);
    }
    assert!(history.accepts());
    // The fourth would need entry 1's room: it is stored, and the log is full.
    history.append(
        2,
        "b".into(),
        [vec![1; 29], Vec::new()],
        t0() + Duration::from_millis(5),
    );
    assert_eq!(history.first_id(), 1);
    assert_eq!(history.bytes(), 120, "over the cap by one message");
    assert_eq!(history.full_since(), Some(t0() + Duration::from_millis(5)));
    assert!(!history.accepts());
}

#[test]
fn senders_resume_once_readers_free_a_quarter_of_the_log() {
    let mut history = small();
    history.join(1);
    for _ in 0..5 {
        append(&mut history, 20);
    }
    append(&mut history, 20); // 120 bytes: full
    assert!(!history.accepts());
    // The reader writes entry 1: 100 bytes could remain, but 75 is the goal.
    history.leave(1);
    history.join(2);
    assert!(!history.accepts());
    history.leave(2);
    history.join(3);
    assert!(!history.accepts(), "80 bytes left is still over 75");
    history.leave(3);
    history.join(4);
    assert!(history.accepts(), "entries 1 to 3 gone: 60 bytes left");
    assert_eq!(history.first_id(), 4);
    assert!(history.full_since().is_none());
}

#[test]
fn the_stall_cutoff_is_where_the_log_would_fall_to_three_quarters() {
    let mut history = small();
    history.join(1);
    for _ in 0..6 {
        append(&mut history, 20);
    }
    // 120 bytes; 75 is the resume level: ids 1, 2 and 3 must go.
    assert_eq!(history.stall_cutoff(), 4);
}

#[test]
fn readers_are_counted_where_they_stand() {
    let mut history = small();
    history.join(1);
    append(&mut history, 10);
    append(&mut history, 10);
    history.join(3); // caught up
    history.leave(1);
    history.join(2);
    append(&mut history, 10); // the caught-up reader now waits at 3
    assert_eq!(history.get(2).unwrap().readers, 1);
    assert_eq!(history.get(3).unwrap().readers, 1);
    assert_eq!(history.caught_up, 0);
}

#[test]
fn a_resume_is_served_only_from_history_still_held_in_this_epoch() {
    let mut history = small();
    for _ in 0..20 {
        append(&mut history, 1);
    }
    // Held: 13..=20.
    assert_eq!(history.resume_point(12, "e"), Some(13));
    assert_eq!(history.resume_point(20, "e"), Some(21), "nothing to replay");
    assert_eq!(history.resume_point(11, "e"), None, "13 is gone");
    assert_eq!(history.resume_point(21, "e"), None, "an id from the future");
    assert_eq!(history.resume_point(15, "other"), None);
    assert_eq!(
        small().resume_point(0, "e"),
        Some(1),
        "an empty log, from scratch"
    );
}

fn reader(format: Format, token: usize) -> Reader {
    Reader {
        next: 1,
        offset: 0,
        format,
        token,
    }
}

#[test]
fn a_reader_gets_others_messages_plain_and_its_own_as_acks_in_v1() {
    let mut history = History::new("e".into(), 1000, 8);
    let hello = Message::new(Opcode::Text, b"hi").frame;
    history.append(7, "ann".into(), [hello.clone(), b"ack".to_vec()], t0());
    let entry = history.get(1).unwrap();
    assert_eq!(reader(Format::Plain, 3).frame(entry), Some(&hello[..]));
    assert_eq!(reader(Format::Plain, 7).frame(entry), Some(&b""[..]));
    assert_eq!(reader(Format::V1, 7).frame(entry), Some(&b"ack"[..]));
    assert_eq!(reader(Format::V1, 3).frame(entry), None, "not made yet");
    history.prepare(&reader(Format::V1, 3), 8, t0());
    let json = r#"{"type":"message","id":1,"from":"ann","text":"hi"}"#;
    let entry = history.get(1).unwrap();
    assert_eq!(
        reader(Format::V1, 3).frame(entry),
        Some(&Message::new(Opcode::Text, json.as_bytes()).frame[..])
    );
}

#[test]
fn the_v1_form_counts_in_the_logs_size_and_can_fill_it() {
    let mut history = History::new("e".into(), 100, 8);
    let payload = [0xAB; 40];
    history.append(
        7,
        "x".into(),
        [Message::new(Opcode::Binary, &payload).frame, Vec::new()],
        t0(),
    );
    let before = history.bytes();
    history.join(1);
    history.prepare(&reader(Format::V1, 3), 8, t0());
    assert!(history.bytes() > before + 40, "base64 of 40 bytes is 56");
    assert!(
        history.full_since().is_some(),
        "over 100 bytes: senders wait"
    );
}

#[test]
fn v1_forms_are_made_within_the_cap_plus_one_form() {
    // Text of control characters: its JSON escape is six times its size.
    let mut history = History::new("e".into(), 1000, 100);
    history.join(1);
    for _ in 0..10 {
        let text = Message::new(Opcode::Text, &[1u8; 50]).frame;
        history.append(7, "x".into(), [text, Vec::new()], t0());
    }
    let v1 = reader(Format::V1, 3);
    history.prepare(&v1, 512, t0());
    let made = (1..=10)
        .filter(|&id| !history.get(id).unwrap().v1.is_empty())
        .count();
    assert!((1..10).contains(&made), "{made} v1 forms made");
    assert!(history.bytes() <= 1000 + 400, "{} bytes", history.bytes());
}

// ---- with --redis: the room's epoch and ids ----

#[test]
fn an_empty_log_adopts_the_rooms_epoch_and_next_id_once_it_holds_one_only_the_epoch() {
    let mut history = History::new("local".into(), 1000, 10);
    history.join(1);
    assert_eq!(history.adopt("room".into(), 41), Some(1));
    assert_eq!((history.epoch(), history.last_id()), ("room", 40));
    // The loop moved the reader; the count of caught-up readers is unchanged.
    let id = history.append(7, "x".into(), [vec![0x81, 0], Vec::new()], t0());
    assert_eq!(id, 41);
    assert_eq!(history.adopt("lost".into(), 5), None);
    assert_eq!((history.epoch(), history.last_id()), ("lost", 41));
    assert_eq!(
        history.resume_point(40, "room"),
        None,
        "an old epoch is a reset"
    );
}

#[test]
fn a_placeholder_writes_nothing_to_plain_readers_and_its_reset_to_v1_and_sse_readers() {
    let mut history = History::new("e".into(), 1000, 10);
    history.join(1);
    let reset = r#"{"type":"reset"}"#;
    assert_eq!(history.append_placeholder(None, t0()), 1);
    assert_eq!(history.append_placeholder(Some(reset), t0()), 2);
    let (plain, v1, sse) = (
        reader(Format::Plain, 3),
        reader(Format::V1, 3),
        reader(Format::Sse, 3),
    );
    let first = history.get(1).unwrap();
    assert_eq!(
        (plain.frame(first), v1.frame(first), sse.frame(first)),
        (Some(&[][..]), Some(&[][..]), Some(&[][..]))
    );
    let second = history.get(2).unwrap();
    let frame = Message::new(Opcode::Text, reset.as_bytes()).frame;
    assert_eq!(v1.frame(second), Some(&frame[..]));
    assert_eq!(
        sse.frame(second),
        Some(&b"id: 2\ndata: {\"type\":\"reset\"}\n\n"[..])
    );
    // Nothing to make: prepare leaves placeholders as they are.
    history.prepare(&v1, 8, t0());
    history.prepare(&sse, 8, t0());
    assert!(history.get(1).unwrap().v1.is_empty() && history.get(1).unwrap().sse.is_empty());
    // A long poll gets the reset's object, and nothing for the silent one.
    assert_eq!(history.v1_object(1, t0()), Some(&b""[..]));
    assert_eq!(history.v1_object(2, t0()), Some(reset.as_bytes()));
}

#[test]
fn a_long_poll_object_is_made_once_and_kept_in_the_log() {
    let mut history = History::new("e".into(), 10_000, 10);
    history.join(1);
    let frame = Message::new(Opcode::Text, b"hi").frame;
    history.append(7, "ann".into(), [frame, Vec::new()], t0());
    let before = history.bytes();
    let object = history.v1_object(1, t0()).unwrap().to_vec();
    assert_eq!(
        object,
        br#"{"type":"message","id":1,"from":"ann","text":"hi"}"#
    );
    let made = history.bytes();
    assert!(made > before, "the form counts in the log's size");
    assert_eq!(history.v1_object(1, t0()).unwrap(), &object[..]);
    assert_eq!(history.bytes(), made, "made once");
}
