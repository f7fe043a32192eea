//! Producer state to and from a [`ProducerSnapshot`] (the snapshot file's contents; the
//! bytes are `crate::snapshot`'s).

use crate::snapshot::{ProducerSnapshot, SnapshotBatch, SnapshotEntry, UnreplicatedTxn};

use super::{BatchMeta, ProducerEntry, ProducerStateManager, Window};

impl ProducerStateManager {
    /// The state to snapshot: the producers least recently used first (loading them in file
    /// order restores the LRU order the producer-id cap evicts by), and the completed
    /// transactions whose markers are not yet below the high watermark.
    pub(crate) fn snapshot(&self) -> ProducerSnapshot {
        let entries = self
            .producers
            .iter_lru()
            .map(|(pid, e)| SnapshotEntry {
                producer_id: pid,
                epoch: e.epoch,
                coordinator_epoch: e.coordinator_epoch,
                last_timestamp: e.last_timestamp,
                txn_first_offset: e.txn_first_offset,
                batches: e
                    .batches
                    .to_vec()
                    .into_iter()
                    .map(|b| SnapshotBatch {
                        last_seq: b.last_seq,
                        last_offset: b.last_offset,
                        offset_delta: b.offset_delta,
                        timestamp: b.timestamp,
                    })
                    .collect(),
            })
            .collect();
        let unreplicated = self
            .unreplicated_by_first
            .iter()
            .map(|(&first_offset, &last_offset)| UnreplicatedTxn {
                first_offset,
                last_offset,
            })
            .collect();
        ProducerSnapshot {
            entries,
            unreplicated,
        }
    }

    /// Replaces the state with a loaded snapshot (dropping any transaction the snapshot
    /// claims completed at or past its own end offset). Expiry is the caller's: the log
    /// expires producers once its state is built, whether from a snapshot or a replay.
    pub(crate) fn load(&mut self, snapshot: ProducerSnapshot, map_end_offset: i64) {
        self.clear(map_end_offset);
        for t in snapshot.unreplicated {
            if t.last_offset < map_end_offset {
                self.unreplicated_by_first.insert(t.first_offset, t.last_offset);
                self.unreplicated_by_last.insert(t.last_offset, t.first_offset);
            }
        }
        self.producers.reserve(snapshot.entries.len());
        for s in snapshot.entries {
            let window = self.config.window;
            let skip = s.batches.len().saturating_sub(window);
            let mut entry = ProducerEntry {
                epoch: s.epoch,
                coordinator_epoch: s.coordinator_epoch,
                last_timestamp: s.last_timestamp,
                txn_first_offset: s.txn_first_offset,
                batches: Window::default(),
            };
            for b in s.batches.into_iter().skip(skip) {
                entry.batches.push(
                    BatchMeta {
                        last_seq: b.last_seq,
                        offset_delta: b.offset_delta,
                        last_offset: b.last_offset,
                        timestamp: b.timestamp,
                    },
                    window,
                );
            }
            if entry.txn_first_offset >= 0 {
                self.ongoing.insert(entry.txn_first_offset, s.producer_id);
            }
            self.producers.put(s.producer_id, entry);
        }
    }
}
