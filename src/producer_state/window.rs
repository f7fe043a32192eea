//! A producer's dedup window: its most recent batches, kept inline without allocation for
//! Kafka's default of five (older batches packed relative to their newer neighbour), on the
//! heap otherwise.

use std::collections::VecDeque;

use crate::types::decrement_sequence;

/// Metadata of one of a producer's recent batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub last_seq: i32,
    pub offset_delta: i32,
    pub last_offset: i64,
    pub timestamp: i64,
}

impl BatchMeta {
    pub(crate) fn first_seq(&self) -> i32 {
        decrement_sequence(self.last_seq, self.offset_delta)
    }
    pub(crate) fn first_offset(&self) -> i64 {
        self.last_offset - i64::from(self.offset_delta)
    }
}

/// Batches an inline window holds (Kafka's default of 5 in-flight requests).
const INLINE_WINDOW: usize = 5;

/// An older batch of an inline window, relative to the next newer batch N: 12 bytes instead
/// of 24. Within one epoch a producer's batches follow each other (seq_gap 0) a few offsets
/// apart and close in time, so almost every window fits; one that does not moves to the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PackedBatch {
    /// `N.first_offset - last_offset` (≥ 1).
    offset_gap: u32,
    /// `timestamp - N.timestamp`.
    ts_delta: i32,
    /// `offset_delta` (records - 1).
    offset_delta: u16,
    /// `N.first_seq - 1 - last_seq`, as wrapping i32 arithmetic (0 when consecutive).
    seq_gap: u16,
}

impl PackedBatch {
    fn pack(b: &BatchMeta, newer: &BatchMeta) -> Option<PackedBatch> {
        let seq_gap = newer.first_seq().wrapping_sub(1).wrapping_sub(b.last_seq);
        Some(PackedBatch {
            offset_gap: u32::try_from(newer.first_offset().checked_sub(b.last_offset)?).ok()?,
            ts_delta: i32::try_from(b.timestamp.checked_sub(newer.timestamp)?).ok()?,
            offset_delta: u16::try_from(b.offset_delta).ok()?,
            seq_gap: u16::try_from(seq_gap).ok()?,
        })
    }
    fn unpack(&self, newer: &BatchMeta) -> BatchMeta {
        BatchMeta {
            last_seq: newer
                .first_seq()
                .wrapping_sub(1)
                .wrapping_sub(i32::from(self.seq_gap)),
            offset_delta: i32::from(self.offset_delta),
            last_offset: newer.first_offset() - i64::from(self.offset_gap),
            timestamp: newer.timestamp + i64::from(self.ts_delta),
        }
    }
}

/// How many batches an inline window holds (an enum, so that [`Window`] needs no tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum InlineLen {
    L0,
    L1,
    L2,
    L3,
    L4,
    L5,
}

impl InlineLen {
    const ALL: [InlineLen; 6] = [
        InlineLen::L0,
        InlineLen::L1,
        InlineLen::L2,
        InlineLen::L3,
        InlineLen::L4,
        InlineLen::L5,
    ];
    fn get(self) -> usize {
        self as usize
    }
}

/// A producer's dedup window: its most recent batches, at most the window size.
///
/// Up to five batches live inline with no allocation: the newest whole, the older ones as
/// [`PackedBatch`] relative to their newer neighbour. A larger configured window, or a batch
/// that does not pack, moves the window to a `VecDeque` on the heap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Window {
    Inline {
        newest: BatchMeta,
        /// `older[k]` is the batch k + 1 places before the newest.
        older: [PackedBatch; INLINE_WINDOW - 1],
        len: InlineLen,
    },
    /// Oldest first.
    Heap(VecDeque<BatchMeta>),
}

impl Default for Window {
    fn default() -> Self {
        Window::Inline {
            newest: BatchMeta {
                last_seq: -1,
                offset_delta: 0,
                last_offset: -1,
                timestamp: -1,
            },
            older: [PackedBatch::default(); INLINE_WINDOW - 1],
            len: InlineLen::L0,
        }
    }
}

impl Window {
    pub(crate) fn len(&self) -> usize {
        match self {
            Window::Inline { len, .. } => len.get(),
            Window::Heap(v) => v.len(),
        }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub(crate) fn clear(&mut self) {
        *self = Window::default();
    }
    pub(crate) fn last(&self) -> Option<BatchMeta> {
        match self {
            Window::Inline { newest, len, .. } => (len.get() > 0).then_some(*newest),
            Window::Heap(v) => v.back().copied(),
        }
    }
    /// Walks the batches newest first until `f` returns `true`; returns that batch.
    fn find_newest_first(&self, mut f: impl FnMut(&BatchMeta) -> bool) -> Option<BatchMeta> {
        match self {
            Window::Inline { newest, older, len } => {
                let n = len.get();
                if n == 0 {
                    return None;
                }
                if f(newest) {
                    return Some(*newest);
                }
                let mut cur = *newest;
                for p in &older[..n - 1] {
                    cur = p.unpack(&cur);
                    if f(&cur) {
                        return Some(cur);
                    }
                }
                None
            }
            Window::Heap(v) => v.iter().rev().find(|m| f(m)).copied(),
        }
    }
    /// The batch with exactly this sequence range (the dedup check; the hot path).
    pub(crate) fn find(&self, first_seq: i32, last_seq: i32) -> Option<BatchMeta> {
        self.find_newest_first(|m| m.last_seq == last_seq && m.first_seq() == first_seq)
    }
    /// The batches, oldest first.
    pub(crate) fn to_vec(&self) -> Vec<BatchMeta> {
        let mut v = Vec::with_capacity(self.len());
        self.find_newest_first(|m| {
            v.push(*m);
            false
        });
        v.reverse();
        v
    }
    /// Adds the newest batch, dropping the oldest beyond `cap` batches.
    pub(crate) fn push(&mut self, b: BatchMeta, cap: usize) {
        if let Window::Inline { newest, older, len } = self {
            if cap <= INLINE_WINDOW {
                if len.get() == 0 {
                    *newest = b;
                    *len = InlineLen::L1;
                    return;
                }
                if cap == 1 {
                    // Older batches go too (the window may have been larger before a
                    // config change): they are packed relative to the newest.
                    *newest = b;
                    *len = InlineLen::L1;
                    return;
                }
                if let Some(packed) = PackedBatch::pack(newest, &b) {
                    older.copy_within(0..INLINE_WINDOW - 2, 1);
                    older[0] = packed;
                    *newest = b;
                    *len = InlineLen::ALL[(len.get() + 1).min(cap)];
                    return;
                }
            }
            // Does not fit inline: move to the heap.
            let mut v: VecDeque<BatchMeta> = VecDeque::with_capacity(cap.min(self.len() + 1));
            v.extend(self.to_vec());
            *self = Window::Heap(v);
        }
        if let Window::Heap(v) = self {
            while v.len() >= cap {
                v.pop_front();
            }
            if v.len() == v.capacity() {
                // Grow one slot at a time up to the window: an idle producer holds exactly
                // the batches it has.
                v.reserve_exact(1);
            }
            v.push_back(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inline window answers exactly what a plain deque of the last `cap` batches
    /// answers, whatever the gaps between batches (consecutive, gapped, wrapped sequences,
    /// huge offset or time jumps that force the heap form), and whatever `cap` each push is
    /// given (a log's window changed while it is open).
    #[test]
    fn window_matches_a_deque() {
        use proptest::prelude::*;
        let batch = (0..6u8, 0..70_000i32, 1..3i64, -5..5i64, 0..4u8, 0..12usize);
        proptest!(|(cap in prop_oneof![1..=6usize, Just(128usize)],
                    steps in proptest::collection::vec(batch, 1..40))| {
            let mut w = Window::default();
            let mut reference: VecDeque<BatchMeta> = VecDeque::new();
            let (mut seq, mut offset, mut ts) = (i32::MAX - 40, 0i64, 1_000i64);
            for (kind, delta, gap, dt, seq_jump, new_cap) in steps {
                // Now and then the window changes size, as `eoslog.producer.window` may.
                let cap = if new_cap < 6 { new_cap + 1 } else { cap };
                let offset_delta = if kind == 0 { delta } else { delta % 8 };
                seq = seq.wrapping_add(i32::from(seq_jump) * 1000);
                let first_seq = seq;
                let last_seq = crate::types::increment_sequence(first_seq, offset_delta);
                seq = crate::types::increment_sequence(last_seq, 1);
                offset += gap * if kind == 1 { 1 << 33 } else { 1 };
                let b = BatchMeta {
                    last_seq,
                    offset_delta,
                    last_offset: offset + i64::from(offset_delta),
                    timestamp: ts,
                };
                offset = b.last_offset + 1;
                ts += dt * if kind == 2 { 1 << 40 } else { 1 };
                w.push(b, cap);
                while reference.len() >= cap {
                    reference.pop_front();
                }
                reference.push_back(b);
                prop_assert_eq!(w.len(), reference.len());
                prop_assert_eq!(w.last(), reference.back().copied());
                prop_assert_eq!(w.to_vec(), reference.iter().copied().collect::<Vec<_>>());
                for m in &reference {
                    prop_assert_eq!(w.find(m.first_seq(), m.last_seq), Some(*m));
                }
                prop_assert_eq!(w.find(seq, seq), None);
            }
        });
    }

    #[test]
    fn default_window_stays_inline_and_small() {
        let mut w = Window::default();
        for i in 0..20i64 {
            w.push(
                BatchMeta {
                    last_seq: i as i32 * 4 + 3,
                    offset_delta: 3,
                    last_offset: i * 10 + 3,
                    timestamp: 1_700_000_000_000 + i,
                },
                5,
            );
        }
        assert!(matches!(w, Window::Inline { .. }), "{w:?}");
        assert_eq!(w.len(), 5);
        assert!(
            std::mem::size_of::<Window>() <= 80,
            "{}",
            std::mem::size_of::<Window>()
        );
    }
}
