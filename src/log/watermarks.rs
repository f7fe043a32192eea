//! The high watermark, the first unstable offset and the last stable offset: one function
//! publishes all three ([`Log::publish_watermarks`]), under the writer lock.
//!
//! Guarantees (tested in `tests/watermarks.rs`):
//! - the high watermark never moves backwards, except by a truncation
//!   ([`Log::truncate_to`], [`Log::truncate_fully_and_start_at`]);
//! - the last stable offset never moves backwards either, except by a truncation (it is
//!   computed from the FUO, which no append can lower below the HW): a reader that saw the
//!   LSO at `n` never later sees it below `n`, so read_committed consumers never see a
//!   position they already passed become unstable again;
//! - `LSO <= HW` in every read (a fetch's bounds derive from one pair of loads);
//! - a poisoned log keeps both until it is reopened.

use std::sync::atomic::Ordering;

use crate::types::Offset;

use super::{Log, Writer, NO_OFFSET};

/// How a publication moves the high watermark.
#[derive(Debug, Clone, Copy)]
pub(super) enum HwMove {
    /// Forward only: to `max(current, target)`, at most the log end.
    Advance(i64),
    /// Where it is (the first unstable offset or the log start changed).
    Keep,
    /// Exactly here: a truncation (the one way down), or a log restarted at an offset.
    Reset(i64),
}

/// The LSO given the first unstable offset (`NO_OFFSET` when none), log start and HW.
pub(super) fn stable_offset(first_unstable: i64, log_start: i64, hw: i64) -> i64 {
    if first_unstable == NO_OFFSET {
        hw
    } else {
        first_unstable.max(log_start).min(hw)
    }
}

impl Log {
    /// The high watermark.
    #[must_use]
    pub fn high_watermark(&self) -> Offset {
        Offset(self.high_watermark.load(Ordering::Acquire))
    }

    /// The first offset not yet decided (or whose marker is not yet below the high
    /// watermark), lower-bounded by the log start offset; `None` when everything is stable.
    #[must_use]
    pub fn first_unstable_offset(&self) -> Option<Offset> {
        let f = self.first_unstable.load(Ordering::Acquire);
        (f != NO_OFFSET).then(|| Offset(f.max(self.log_start.load(Ordering::Acquire))))
    }

    /// The last stable offset: `min(first unstable offset, high watermark)`. O(1). Never
    /// moves backwards except by a truncation.
    #[must_use]
    pub fn last_stable_offset(&self) -> Offset {
        Offset(self.stable_bounds().0)
    }

    /// `(LSO, HW)` as one consistent pair: the LSO is loaded first, and every publication
    /// stores the HW before the LSO computed from it, so the HW loaded after is at least
    /// that; the `min` covers a truncation between the two loads.
    pub(super) fn stable_bounds(&self) -> (i64, i64) {
        let lso = self.last_stable.load(Ordering::Acquire);
        let hw = self.high_watermark.load(Ordering::Acquire);
        (lso.min(hw), hw)
    }

    /// Sets the high watermark and returns it. It only moves forward: a lower `offset`
    /// leaves it where it is (only a truncation lowers it), and it is clamped to the log
    /// end. A poisoned log keeps its high watermark (and so its last stable offset) until
    /// reopened.
    pub fn set_high_watermark(&self, offset: Offset) -> Offset {
        let mut w = self.writer.lock();
        Offset(self.publish_watermarks(&mut w, HwMove::Advance(offset.0)))
    }

    /// With `eoslog.high.watermark=durable`: moves the HW to the durable offset.
    pub(super) fn advance_durable_hw(&self) {
        let durable = self.sync.lock().durable;
        let mut w = self.writer.lock();
        self.publish_watermarks(&mut w, HwMove::Advance(durable));
    }

    /// The one place that publishes the high watermark, the first unstable offset and the
    /// last stable offset (under the writer lock). Returns the high watermark.
    pub(super) fn publish_watermarks(&self, w: &mut Writer, change: HwMove) -> i64 {
        let current = self.high_watermark.load(Ordering::Acquire);
        let reset = matches!(change, HwMove::Reset(_));
        if self.poisoned.load(Ordering::Acquire) && !reset {
            // After a failed write the in-memory transaction state may be ahead of the
            // transaction index: keep the LSO where it is until a reopen runs recovery.
            return current;
        }
        let start = self.log_start.load(Ordering::Acquire);
        let end = self.log_end.load(Ordering::Acquire);
        let hw = match change {
            HwMove::Advance(target) => target.min(end).max(current),
            HwMove::Keep => current,
            HwMove::Reset(target) => target,
        };
        w.psm.on_high_watermark(hw);
        let fuo = w.psm.first_unstable_offset().unwrap_or(NO_OFFSET);
        let lso = stable_offset(fuo, start, hw);
        let previous = self.last_stable.load(Ordering::Acquire);
        if !reset && lso < previous {
            // Only a truncation lowers the LSO: a transaction begins at the log end, at or
            // above the HW, and a completed one keeps its first offset until its marker is
            // below the HW. Were that ever broken, exposing undecided data would be worse
            // than a step back, so the computed value is published, loudly.
            tracing::error!(dir = %self.dir.display(), previous, lso, "the last stable offset moved back");
            debug_assert!(false, "LSO would move back from {previous} to {lso}");
        }
        // Order matters to readers ([`Log::stable_bounds`]): FUO, HW, then LSO.
        self.first_unstable.store(fuo, Ordering::Release);
        self.high_watermark.store(hw, Ordering::Release);
        self.last_stable.store(lso, Ordering::Release);
        hw
    }
}
