//! Domain newtypes. Each wraps the integer Kafka puts on the wire, so the values convert
//! losslessly to and from the on-disk format, and the type says what the number means.

use std::fmt;

macro_rules! newtype {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub $inner);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                Self(v)
            }
        }
        impl From<$name> for $inner {
            fn from(v: $name) -> Self {
                v.0
            }
        }
    };
}

newtype!(
    /// A position in the partition log. Ordered as the log is: a smaller offset was
    /// appended earlier.
    Offset(i64)
);
newtype!(
    /// A producer id (`-1` on the wire means "no producer": a plain, non-idempotent batch).
    ProducerId(i64)
);
newtype!(
    /// A producer epoch. A higher epoch fences every lower one.
    ProducerEpoch(i16)
);
newtype!(
    /// A per-producer, per-partition sequence number. Wraps from `i32::MAX` to 0.
    Sequence(i32)
);
newtype!(
    /// The epoch of the transaction coordinator that wrote a marker.
    CoordinatorEpoch(i32)
);
newtype!(
    /// The partition leader epoch stamped into every batch on a leader append.
    LeaderEpoch(i32)
);

impl Offset {
    /// The offset after this one.
    #[must_use]
    pub const fn next(self) -> Offset {
        Offset(self.0 + 1)
    }
}

impl ProducerId {
    /// Kafka's `NO_PRODUCER_ID`.
    pub const NONE: ProducerId = ProducerId(-1);
    /// True for a real producer id (`>= 0`).
    #[must_use]
    pub const fn is_some(self) -> bool {
        self.0 >= 0
    }
}

impl ProducerEpoch {
    /// Kafka's `NO_PRODUCER_EPOCH`.
    pub const NONE: ProducerEpoch = ProducerEpoch(-1);
}

impl Sequence {
    /// Kafka's `NO_SEQUENCE`.
    pub const NONE: Sequence = Sequence(-1);

    /// `self + delta` with Kafka's wrap: the successor of `i32::MAX` is 0, never negative.
    #[must_use]
    pub const fn increment(self, delta: i32) -> Sequence {
        Sequence(increment_sequence(self.0, delta))
    }

    /// True when `next` may directly follow `self` (`next == self + 1`, or the wrap
    /// from `i32::MAX` to 0).
    #[must_use]
    pub const fn is_followed_by(self, next: Sequence) -> bool {
        in_sequence(self.0, next.0)
    }
}

/// Kafka's `incrementSequence`: wraps at `i32::MAX` to 0.
#[must_use]
pub const fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

/// Kafka's `decrementSequence`, the inverse of [`increment_sequence`].
#[must_use]
pub const fn decrement_sequence(seq: i32, delta: i32) -> i32 {
    if seq < delta {
        i32::MAX - (delta - seq) + 1
    } else {
        seq - delta
    }
}

/// Kafka's in-sequence rule: `next == last + 1` (in 64-bit) or the wrap `MAX -> 0`.
#[must_use]
pub const fn in_sequence(last: i32, next: i32) -> bool {
    next as i64 == last as i64 + 1 || (next == 0 && last == i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_wrap() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 10, 20), 9);
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(decrement_sequence(9, 20), i32::MAX - 10);
        assert_eq!(decrement_sequence(8, 3), 5);
        assert!(in_sequence(i32::MAX, 0));
        assert!(in_sequence(4, 5));
        assert!(!in_sequence(4, 6));
        assert!(!in_sequence(-1, 1));
        assert!(in_sequence(-1, 0));
    }
}
