//! The high watermark, the first unstable offset and the last stable offset.

use std::sync::atomic::Ordering;

use crate::types::Offset;

use super::{Log, Writer, NO_OFFSET};

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

    /// The last stable offset: `min(first unstable offset, high watermark)`. O(1).
    #[must_use]
    pub fn last_stable_offset(&self) -> Offset {
        let hw = self.high_watermark.load(Ordering::Acquire);
        Offset(self.lso_given(hw))
    }

    pub(super) fn lso_given(&self, hw: i64) -> i64 {
        let fuo = self.first_unstable.load(Ordering::Acquire);
        if fuo == NO_OFFSET {
            hw
        } else {
            fuo.max(self.log_start.load(Ordering::Acquire)).min(hw)
        }
    }

    /// Sets the high watermark (clamped to `[log start, log end]`) and returns it. A poisoned
    /// log keeps its high watermark (and so its last stable offset) until reopened.
    pub fn set_high_watermark(&self, offset: Offset) -> Offset {
        let mut w = self.writer.lock();
        if self.poisoned.load(Ordering::Acquire) {
            // After a failed write the in-memory transaction state may be ahead of the
            // transaction index: keep the LSO where it is until a reopen runs recovery.
            return self.high_watermark();
        }
        let hw = offset.0.clamp(
            self.log_start.load(Ordering::Acquire),
            self.log_end.load(Ordering::Acquire),
        );
        w.psm.on_high_watermark(hw);
        self.publish_fuo(&w);
        self.high_watermark.store(hw, Ordering::Release);
        Offset(hw)
    }

    pub(super) fn publish_fuo(&self, w: &Writer) {
        let fuo = w.psm.first_unstable_offset().unwrap_or(NO_OFFSET);
        self.first_unstable.store(fuo, Ordering::Release);
    }

    pub(super) fn advance_durable_hw(&self) {
        let durable = self.sync.lock().durable;
        let w = self.writer.lock();
        self.set_hw_locked(w, durable);
    }

    pub(super) fn set_hw_locked(&self, mut w: parking_lot::MutexGuard<'_, Writer>, hw: i64) {
        let hw = hw.min(self.log_end.load(Ordering::Acquire));
        if hw > self.high_watermark.load(Ordering::Acquire) && !self.poisoned.load(Ordering::Acquire) {
            w.psm.on_high_watermark(hw);
            self.publish_fuo(&w);
            self.high_watermark.store(hw, Ordering::Release);
        }
    }
}
