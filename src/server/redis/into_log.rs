//! `--redis`: the room's stream into the local log. The first greeting
//! lines the (empty) log up with the room's epoch and ids; each entry read
//! back is stored with its stream id, its local sender (if this process
//! appended it) acked then; a gap in the ids gets placeholders.

use std::time::Instant;

use log::{debug, info, warn};

use super::{MAX_GAP, NO_SENDER};
use crate::cluster::{Role, StreamEntry};
use crate::server::Server;
use crate::v1;

impl Server {
    /// The commands connection is greeted. The first time, the (empty)
    /// local log takes the room's epoch and next id, and the readers that
    /// joined before move with it. Later, a changed epoch means Redis lost
    /// the room (restarted empty): the hello script raised the counter to
    /// our last id, so ids go on from here; resumes naming the old epoch
    /// get `reset`.
    pub(super) fn line_up_log(&mut self, epoch: String, counter: u64) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let first = !std::mem::replace(&mut cluster.lined_up, true);
        if !first && epoch != self.history.epoch() {
            warn!(
                "redis: the room's epoch changed from {} to {epoch}: Redis lost its data; ids go on after {}",
                self.history.epoch(),
                self.history.last_id()
            );
        }
        if let Some(old) = self.history.adopt(epoch.clone(), counter + 1) {
            for reader in self
                .connections
                .values_mut()
                .filter_map(|c| c.reader.as_mut())
            {
                if reader.next == old {
                    reader.next = counter + 1;
                }
            }
        }
        info!(
            "redis: ready: room epoch {epoch}, room's last id {counter}, this process's {}",
            self.history.last_id()
        );
    }

    /// Entries read from the stream go into the local log in the stream's
    /// order, with the stream's ids; each local sender gets its ack then.
    pub(super) fn store_entries(
        &mut self,
        entries: Vec<(StreamEntry, Option<usize>)>,
        now: Instant,
    ) {
        let was_full = self.history.full_since().is_some();
        for (entry, token) in entries {
            let expected = self.history.last_id() + 1;
            if entry.id < expected {
                debug!("redis: entry 0-{} is already in the log", entry.id);
                continue;
            }
            if entry.id > expected
                && let Err(why) = self.stream_gap(expected, entry.id, now)
            {
                return self.redis_failed(Role::Stream, &why, now);
            }
            let sender = token.unwrap_or(NO_SENDER);
            let ack = self.ack_for(sender, entry.id);
            let from = entry.from.into_boxed_str();
            self.history.append(sender, from, [entry.frame, ack], now);
            self.books.log_grew = true;
        }
        if !was_full && self.history.full_since().is_some() {
            self.log_pause(now);
        }
    }

    /// The stream skips ids: Redis trimmed entries this process had not
    /// read yet (`MAXLEN ~`), or lost them. Each missing id gets a
    /// placeholder in the local log, so ids stay the room's; plain clients
    /// get nothing for them, `miochat.v1` clients one `reset` naming the
    /// last missing id: never a silent skip for a client that has ids.
    fn stream_gap(&mut self, expected: u64, next: u64, now: Instant) -> Result<(), String> {
        if next - expected > MAX_GAP {
            return Err(format!("the stream skips from {expected} to {next}"));
        }
        warn!(
            "redis: ids {expected} to {} are gone from the stream; placeholders stand for them",
            next - 1
        );
        for id in expected..next {
            let reset = (id + 1 == next).then(|| v1::reset(id));
            self.history.append_placeholder(reset.as_deref(), now);
        }
        Ok(())
    }
}
