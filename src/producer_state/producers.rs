//! The producers of one partition: a dense slab with an intrusive LRU list and a compact
//! hash index, so that looking a producer up, touching it and evicting one are O(1).

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::ProducerEntry;

const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Slot {
    pid: i64,
    entry: ProducerEntry,
    prev: u32,
    next: u32,
}

/// Producers in a dense slab with an intrusive LRU list (head = least recently used), so
/// touching and evicting are O(1). The hash index holds only slot numbers (4 bytes per
/// producer plus a control byte) and compares producer ids in the slab.
#[derive(Debug, Default)]
pub(crate) struct Producers {
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    slots: Vec<Slot>,
    head: u32,
    tail: u32,
}

impl Producers {
    pub(super) fn new() -> Self {
        Producers {
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
    fn slot_of(&self, pid: i64) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(self.hasher.hash_one(pid), |&i| slots[i as usize].pid == pid)
            .copied()
    }
    pub(crate) fn get(&self, pid: i64) -> Option<&ProducerEntry> {
        self.slot_of(pid).map(|i| &self.slots[i as usize].entry)
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.slots.iter().map(|s| (s.pid, &s.entry))
    }
    /// Producers from least to most recently used.
    pub(crate) fn iter_lru(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        let mut i = self.head;
        std::iter::from_fn(move || {
            let s = self.slots.get(i as usize)?;
            i = s.next;
            Some((s.pid, &s.entry))
        })
    }
    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.slots[i as usize].prev, self.slots[i as usize].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
    }
    fn push_back(&mut self, i: u32) {
        self.slots[i as usize].prev = self.tail;
        self.slots[i as usize].next = NIL;
        if self.tail == NIL {
            self.head = i;
        } else {
            self.slots[self.tail as usize].next = i;
        }
        self.tail = i;
    }
    /// Inserts or replaces, marking the producer most recently used.
    pub(super) fn put(&mut self, pid: i64, entry: ProducerEntry) {
        if let Some(i) = self.slot_of(pid) {
            self.slots[i as usize].entry = entry;
            if self.tail != i {
                self.unlink(i);
                self.push_back(i);
            }
            return;
        }
        let i = self.slots.len() as u32;
        if self.slots.len() == self.slots.capacity() {
            // Grow by an eighth rather than doubling: a slot is 120 bytes, and a doubled slab
            // would leave up to half of it unused for as long as the producers are remembered.
            self.slots.reserve_exact((self.slots.len() / 8).max(64));
        }
        self.slots.push(Slot {
            pid,
            entry,
            prev: NIL,
            next: NIL,
        });
        let Producers {
            index, hasher, slots, ..
        } = self;
        index.insert_unique(hasher.hash_one(pid), i, |&j| {
            hasher.hash_one(slots[j as usize].pid)
        });
        self.push_back(i);
    }
    /// The entry, marked most recently used.
    pub(super) fn get_mut_touch(&mut self, pid: i64) -> Option<&mut ProducerEntry> {
        let i = self.slot_of(pid)?;
        if self.tail != i {
            self.unlink(i);
            self.push_back(i);
        }
        Some(&mut self.slots[i as usize].entry)
    }

    pub(super) fn remove(&mut self, pid: i64) -> Option<ProducerEntry> {
        let i = {
            let slots = &self.slots;
            let found = self
                .index
                .find_entry(self.hasher.hash_one(pid), |&i| slots[i as usize].pid == pid);
            found.ok()?.remove().0
        };
        self.unlink(i);
        let last = self.slots.len() as u32 - 1;
        if i != last {
            // The last slot moves into the hole: point its neighbours (and the index) at `i`.
            let (prev, next, moved) = {
                let s = &self.slots[last as usize];
                (s.prev, s.next, s.pid)
            };
            if prev == NIL {
                self.head = i;
            } else {
                self.slots[prev as usize].next = i;
            }
            if next == NIL {
                self.tail = i;
            } else {
                self.slots[next as usize].prev = i;
            }
            self.slots.swap(i as usize, last as usize);
            if let Some(v) = self.index.find_mut(self.hasher.hash_one(moved), |&j| j == last) {
                *v = i;
            }
        }
        self.slots.pop().map(|s| s.entry)
    }
    /// The least recently used producer without an open transaction.
    pub(super) fn lru_idle(&self) -> Option<i64> {
        let mut i = self.head;
        while i != NIL {
            let s = &self.slots[i as usize];
            if s.entry.txn_first_offset < 0 {
                return Some(s.pid);
            }
            i = s.next;
        }
        None
    }
    pub(super) fn clear(&mut self) {
        *self = Producers::new();
    }
    /// Room for `additional` more producers, allocated once (a snapshot load knows its count:
    /// growing by an eighth at a time would copy the slab dozens of times).
    pub(super) fn reserve(&mut self, additional: usize) {
        self.slots.reserve_exact(additional);
        let Producers {
            index, hasher, slots, ..
        } = self;
        index.reserve(additional, |&j| hasher.hash_one(slots[j as usize].pid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer_state::tests::{append, data, psm};
    use crate::producer_state::AppendOrigin;

    #[test]
    fn lru_eviction_keeps_links_consistent() {
        let mut m = psm(5, 3);
        for pid in 0..10 {
            append(&mut m, data(pid, 0, 0, 1, pid), AppendOrigin::Client).expect("append");
            assert!(m.producers.len() <= 3);
        }
        assert_eq!(m.evictions, 7);
        let mut kept: Vec<i64> = m.producers.iter().map(|(p, _)| p).collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![7, 8, 9]);
        // Touch 7, add 10: 8 is now least recently used.
        append(&mut m, data(7, 0, 1, 1, 20), AppendOrigin::Client).expect("touch");
        append(&mut m, data(10, 0, 0, 1, 21), AppendOrigin::Client).expect("new");
        let mut kept: Vec<i64> = m.producers.iter().map(|(p, _)| p).collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![7, 9, 10]);
        // The list visits every slot exactly once.
        let mut seen = 0;
        let mut i = m.producers.head;
        while i != NIL {
            seen += 1;
            i = m.producers.slots[i as usize].next;
        }
        assert_eq!(seen, 3);
    }
}
