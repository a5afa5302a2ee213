//! A hashed timing wheel (Varghese & Lauck, 1987): O(1) insert and cancel.
//!
//! ```text
//!            current tick
//!                 v
//!   slot:  0   1   2   3   4  ...  SLOTS-1      a timer due at tick t
//!        [ ] [ ] [x] [ ] [x]  ...  [ ]          lives in slot t % SLOTS;
//!                 |       |                     one due a revolution or more
//!               timers  timers                  later waits in the same slot
//! ```
//!
//! Time is cut into ticks of `TICK`. Expiring walks the slots from the last
//! tick processed up to now and takes only the timers whose tick has come, so
//! the work per call is proportional to the ticks passed and the timers that
//! fire, never to the number of timers. The wheel never reads the clock: the
//! caller passes `now`, so tests drive it with a fake clock.
//!
//! A [`TimerHandle`] carries a generation: once a timer fired or was cancelled
//! its entry may be reused, and the old handle then cancels nothing.
//! notes/05-timers.md shows how the server turns this into its `poll` timeout.

use std::time::{Duration, Instant};

/// The wheel's resolution: timers fire up to one tick late, never early.
pub const TICK: Duration = Duration::from_millis(10);
/// Slots in one revolution (10.24 s at 10 ms a tick).
pub const SLOTS: usize = 1024;

/// Names one inserted timer, for cancelling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerHandle {
    index: u32,
    generation: u32,
}

/// One timer, or a free entry waiting for reuse.
#[derive(Debug)]
struct Entry<T> {
    /// Bumped each time the entry is freed, so stale handles miss.
    generation: u32,
    /// `None` while the entry is free.
    timer: Option<Timer<T>>,
}

#[derive(Debug)]
struct Timer<T> {
    deadline: Instant,
    /// The tick at which it fires: the first tick that starts at or after `deadline`.
    tick: u64,
    /// Where it sits in `slots[tick % SLOTS]`, for O(1) removal.
    position: usize,
    value: T,
}

/// A timing wheel holding values of `T` (the server stores connection tokens).
#[derive(Debug)]
pub struct TimerWheel<T> {
    /// Time of tick 0.
    origin: Instant,
    /// Ticks before this one have been expired.
    next_tick: u64,
    /// `slots[s]` holds the indices of the timers whose tick % SLOTS == s.
    slots: Vec<Vec<u32>>,
    entries: Vec<Entry<T>>,
    /// Free entries, reused before the table grows.
    free: Vec<u32>,
    /// Timers currently armed.
    len: usize,
    /// No armed timer fires before this tick: a lower bound, lowered by
    /// `insert` and raised by `next_timeout`, where the search for the next
    /// timer starts (a shortcut: see `next_timeout`).
    earliest: u64,
}

impl<T> TimerWheel<T> {
    pub fn new(origin: Instant) -> TimerWheel<T> {
        TimerWheel {
            origin,
            next_tick: 0,
            slots: vec![Vec::new(); SLOTS],
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
            earliest: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Arms a timer that fires at the first tick at or after `deadline`.
    pub fn insert(&mut self, deadline: Instant, value: T) -> TimerHandle {
        let tick = self.tick_at_or_after(deadline).max(self.next_tick);
        self.earliest = self.earliest.min(tick);
        let slot = &mut self.slots[tick as usize % SLOTS];
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.entries.push(Entry {
                    generation: 0,
                    timer: None,
                });
                (self.entries.len() - 1) as u32
            }
        };
        slot.push(index);
        let entry = &mut self.entries[index as usize];
        entry.timer = Some(Timer {
            deadline,
            tick,
            position: slot.len() - 1,
            value,
        });
        self.len += 1;
        TimerHandle {
            index,
            generation: entry.generation,
        }
    }

    /// Disarms a timer; a handle whose timer already fired or was cancelled does nothing.
    pub fn cancel(&mut self, handle: TimerHandle) -> Option<T> {
        let entry = self.entries.get(handle.index as usize)?;
        if entry.generation != handle.generation || entry.timer.is_none() {
            return None;
        }
        Some(self.remove(handle.index))
    }

    /// Takes every timer due at `now` and appends their values to `expired`,
    /// earliest deadline first.
    pub fn expire(&mut self, now: Instant, expired: &mut Vec<T>) {
        let now_tick = self.tick_at_or_before(now);
        if now_tick < self.next_tick {
            return;
        }
        // After a long sleep (a debugger pause) one pass over every slot is enough.
        let last = now_tick.min(self.next_tick + SLOTS as u64 - 1);
        let mut due = Vec::new();
        for tick in self.next_tick..=last {
            let slot = &self.slots[tick as usize % SLOTS];
            for &index in slot {
                let timer = self.entries[index as usize]
                    .timer
                    .as_ref()
                    .expect("slots hold armed timers");
                // Timers for a later revolution share the slot and stay put.
                if timer.tick <= now_tick {
                    due.push((timer.deadline, index));
                }
            }
        }
        self.next_tick = now_tick + 1;
        due.sort_by_key(|&(deadline, index)| (deadline, index));
        expired.extend(due.into_iter().map(|(_, index)| self.remove(index)));
    }

    /// How long until the next tick that holds a timer: the `poll` timeout.
    /// `None` when no timer is armed (poll may sleep until IO arrives).
    ///
    /// The rule is to scan from `next_tick`, the first tick not yet expired,
    /// for the first slot holding a timer due in that very tick. The
    /// shortcut: the scan starts at `earliest`, where the last one found
    /// that timer. It finds the same tick, because `earliest` stays a lower
    /// bound: `insert` lowers it, a cancel can only leave it lower than
    /// needed, and a scan raises it only to the first tick it found armed
    /// (or past a revolution it found empty). Without it, a server whose
    /// timers are all far away (30 s heartbeats) walks all 1024 slots on
    /// every turn (notes/05-timers.md#the-poll-timeout, notes/README.md#shortcuts).
    pub fn next_timeout(&mut self, now: Instant) -> Option<Duration> {
        if self.len == 0 {
            return None;
        }
        let start = self.earliest.max(self.next_tick);
        let found = (start..start + SLOTS as u64).find(|&tick| {
            self.slots[tick as usize % SLOTS]
                .iter()
                .any(|&i| self.tick_of(i) == tick)
        });
        let first_due = match found {
            Some(tick) => {
                self.earliest = tick;
                tick
            }
            // Every timer is more than a revolution past `start`: wake after
            // one revolution and look again.
            None => {
                self.earliest = start + SLOTS as u64;
                self.next_tick + SLOTS as u64
            }
        };
        Some(self.time_of(first_due).saturating_duration_since(now))
    }

    fn remove(&mut self, index: u32) -> T {
        let entry = &mut self.entries[index as usize];
        let timer = entry
            .timer
            .take()
            .expect("remove is called on armed timers");
        entry.generation = entry.generation.wrapping_add(1);
        let slot = &mut self.slots[timer.tick as usize % SLOTS];
        slot.swap_remove(timer.position);
        // The last timer of the slot moved into the hole: tell it where it now is.
        if let Some(&moved) = slot.get(timer.position) {
            self.entries[moved as usize]
                .timer
                .as_mut()
                .expect("armed")
                .position = timer.position;
        }
        self.free.push(index);
        self.len -= 1;
        timer.value
    }

    fn tick_of(&self, index: u32) -> u64 {
        self.entries[index as usize]
            .timer
            .as_ref()
            .map_or(u64::MAX, |t| t.tick)
    }

    fn time_of(&self, tick: u64) -> Instant {
        self.origin + Duration::from_nanos((TICK.as_nanos() as u64).saturating_mul(tick))
    }

    fn tick_at_or_before(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.origin).as_nanos() / TICK.as_nanos()) as u64
    }

    fn tick_at_or_after(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        nanos.div_ceil(TICK.as_nanos()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake clock: a fixed base plus a duration, never a clock read.
    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    fn expire(wheel: &mut TimerWheel<&'static str>, now: Instant) -> Vec<&'static str> {
        let mut fired = Vec::new();
        wheel.expire(now, &mut fired);
        fired
    }

    // ---- ordering ----

    #[test]
    fn timers_fire_in_deadline_order_even_within_one_tick() {
        let base = Instant::now();
        let mut wheel = TimerWheel::new(base);
        wheel.insert(at(base, 29), "c");
        wheel.insert(at(base, 21), "a");
        wheel.insert(at(base, 25), "b");
        wheel.insert(at(base, 5), "first");
        assert_eq!(expire(&mut wheel, at(base, 30)), ["first", "a", "b", "c"]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn a_timer_never_fires_early() {
        let base = Instant::now();
        let mut wheel = TimerWheel::new(base);
        wheel.insert(at(base, 15), "t");
        assert!(expire(&mut wheel, at(base, 14)).is_empty());
        assert!(
            expire(&mut wheel, at(base, 19)).is_empty(),
            "15 ms rounds up to the 20 ms tick"
        );
        assert_eq!(expire(&mut wheel, at(base, 20)), ["t"]);
    }

    #[test]
    fn a_deadline_in_the_past_fires_at_the_next_expire() {
        let base = Instant::now();
        let mut wheel = TimerWheel::new(base);
        expire(&mut wheel, at(base, 1000));
        wheel.insert(at(base, 500), "late");
        assert_eq!(expire(&mut wheel, at(base, 1010)), ["late"]);
    }

    // ---- cancel and re-arm ----

    #[test]
    fn a_cancelled_timer_does_not_fire() {
        let base = Instant::now();
        let mut wheel = TimerWheel::new(base);
        let handle = wheel.insert(at(base, 50), "cancelled");
        wheel.insert(at(base, 50), "kept");
        assert_eq!(wheel.cancel(handle), Some("cancelled"));
        assert_eq!(expire(&mut wheel, at(base, 100)), ["kept"]);
    }

    #[test]
    fn re_arming_moves_the_deadline() {
        let base = Instant::now();
        let mut wheel = TimerWheel::new(base);
        let handle = wheel.insert(at(base, 50), "heartbeat");
        let value = wheel.cancel(handle).unwrap();
        wheel.insert(at(base, 150), value);
        assert!(expire(&mut wheel, at(base, 100)).is_empty());
        assert_eq!(expire(&mut wheel, at(base, 150)), ["heartbeat"]);
    }

    #[test]
    fn a_stale_handle_cancels_nothing_even_when_its_entry_is_reused() {
        let base = Instant::now();
        let mut wheel = TimerWheel::new(base);
        let old = wheel.insert(at(base, 10), "old");
        assert_eq!(expire(&mut wheel, at(base, 10)), ["old"]);
        let _new = wheel.insert(at(base, 40), "new"); // reuses the freed entry
        assert_eq!(wheel.cancel(old), None);
        assert_eq!(wheel.cancel(old), None);
        assert_eq!(expire(&mut wheel, at(base, 40)), ["new"]);
    }

    // ---- far deadlines and crowded slots ----

    #[test]
    fn a_deadline_several_revolutions_away_waits_its_turn() {
        let base = Instant::now();
        let mut wheel = TimerWheel::new(base);
        let revolution = TICK.as_millis() as u64 * SLOTS as u64;
        wheel.insert(at(base, 3 * revolution + 40), "far");
        wheel.insert(at(base, 40), "near"); // same slot, this revolution
        let mut now = 0;
        let mut fired = Vec::new();
        while now <= 3 * revolution + 40 {
            if !expire(&mut wheel, at(base, now)).is_empty() {
                fired.push(now);
            }
            now += 10;
        }
        assert_eq!(fired, [40, 3 * revolution + 40]);
    }

    #[test]
    fn a_long_pause_still_fires_everything_due_once() {
        let base = Instant::now();
        let mut wheel = TimerWheel::new(base);
        wheel.insert(at(base, 20), "a");
        wheel.insert(at(base, 20_000), "b");
        wheel.insert(at(base, 90_000), "not yet");
        assert_eq!(expire(&mut wheel, at(base, 60_000)), ["a", "b"]);
        assert_eq!(wheel.len(), 1);
    }

    #[test]
    fn many_timers_in_one_slot_cancel_and_fire_correctly() {
        let base = Instant::now();
        let mut wheel = TimerWheel::new(base);
        let handles: Vec<_> = (0..1000u32)
            .map(|i| wheel.insert(at(base, 100), i))
            .collect();
        for handle in handles.iter().step_by(2) {
            wheel.cancel(*handle).unwrap();
        }
        let mut fired = Vec::new();
        wheel.expire(at(base, 100), &mut fired);
        assert_eq!(fired, (0..1000).filter(|i| i % 2 == 1).collect::<Vec<_>>());
    }

    // ---- the poll timeout ----

    #[test]
    fn the_timeout_is_the_time_to_the_next_armed_tick() {
        let base = Instant::now();
        let mut wheel = TimerWheel::new(base);
        assert_eq!(wheel.next_timeout(base), None);
        wheel.insert(at(base, 250), "x");
        wheel.insert(at(base, 95), "y");
        assert_eq!(
            wheel.next_timeout(at(base, 30)),
            Some(Duration::from_millis(70))
        );
        expire(&mut wheel, at(base, 100));
        assert_eq!(
            wheel.next_timeout(at(base, 100)),
            Some(Duration::from_millis(150))
        );
        assert_eq!(wheel.next_timeout(at(base, 300)), Some(Duration::ZERO));
    }

    #[test]
    fn the_timeout_follows_cancels_and_earlier_inserts() {
        let base = Instant::now();
        let mut wheel = TimerWheel::new(base);
        let first = wheel.insert(at(base, 100), "first");
        wheel.insert(at(base, 300), "second");
        assert_eq!(wheel.next_timeout(base), Some(Duration::from_millis(100)));
        wheel.cancel(first);
        assert_eq!(wheel.next_timeout(base), Some(Duration::from_millis(300)));
        wheel.insert(at(base, 50), "earlier");
        assert_eq!(wheel.next_timeout(base), Some(Duration::from_millis(50)));
        let revolution = TICK.as_millis() as u64 * SLOTS as u64;
        let mut far = TimerWheel::new(base);
        far.insert(at(base, 3 * revolution), "far");
        assert_eq!(far.next_timeout(base), Some(TICK * SLOTS as u32));
        far.insert(at(base, 20), "near");
        assert_eq!(far.next_timeout(base), Some(Duration::from_millis(20)));
    }

    #[test]
    fn the_timeout_for_a_far_timer_is_at_most_one_revolution() {
        let base = Instant::now();
        let mut wheel = TimerWheel::new(base);
        wheel.insert(at(base, 60_000), "far");
        let revolution = TICK * SLOTS as u32;
        assert_eq!(wheel.next_timeout(base), Some(revolution));
    }
}
