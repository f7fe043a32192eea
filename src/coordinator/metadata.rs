//! One transactional id's metadata and the state machine over it, with no I/O: each
//! request validates against the current metadata and yields either an error (Kafka's code
//! for the illegal request), nothing to do, or the [`Transit`] to persist. The metadata
//! changes only when a transit was persisted ([`TxnMetadata::apply`]), except the epoch a
//! fence takes before it aborts (Kafka does the same; that epoch is never handed out).

use std::collections::BTreeSet;

use super::error::CoordinatorError;
use super::txn_log::TxnLogValue;
use super::{ProducerIdAndEpoch, TopicPartition, TxnState, TxnVersion, EXHAUSTED_EPOCH};

/// What the coordinator knows about one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnMetadata {
    pub producer_id: i64,
    pub previous_producer_id: i64,
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, so a retried InitProducerId gets the same answer
    /// (-1: none; memory only, as in Kafka).
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TopicPartition>,
    pub start_ms: i64,
    pub last_update_ms: i64,
    pub client_tv: i16,
    /// A fence whose abort failed to persist: the next fence reuses its epoch.
    pub has_failed_epoch_fence: bool,
    /// Removed from its partition's map (expired): a request that found it before retries
    /// its lookup.
    pub removed: bool,
    /// In a Prepare state, the partitions whose marker is not durable yet (`None`: all of
    /// them, as after a load). Memory only.
    pub pending_markers: Option<BTreeSet<TopicPartition>>,
    /// A partition refused this transaction's marker (its producer or coordinator epoch is
    /// newer): the completion waits for the next load of the coordinator, as in Kafka.
    pub abandoned: bool,
}

/// A state to persist, and the memory-only field that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transit {
    pub value: TxnLogValue,
    pub last_producer_epoch: i16,
}

/// What InitProducerId does with an id.
#[derive(Debug)]
pub(crate) enum InitStep {
    /// Persist this Empty state and answer its producer id and epoch.
    Write(Transit),
    /// A transaction is open: fence its producer (abort at a bumped epoch), then answer
    /// `CONCURRENT_TRANSACTIONS` so the new instance retries.
    Fence,
}

/// What EndTxn does.
#[derive(Debug)]
pub(crate) enum EndStep {
    /// Persist this Prepare state, then write markers and complete.
    Prepare(Transit),
    /// A retry of a transaction already ended this way: answer without writing.
    AlreadyDone(ProducerIdAndEpoch),
}

fn fenced(current: i16, got: i16) -> CoordinatorError {
    CoordinatorError::ProducerFenced { current, got }
}

fn invalid_state(state: TxnState, request: &'static str) -> CoordinatorError {
    CoordinatorError::InvalidTxnState { state, request }
}

impl TxnMetadata {
    /// A new id's placeholder: no epoch yet, nothing persisted.
    pub(crate) fn placeholder(producer_id: i64, timeout_ms: i32, now: i64) -> Self {
        TxnMetadata {
            producer_id,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: -1,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now,
            client_tv: 0,
            has_failed_epoch_fence: false,
            removed: false,
            pending_markers: None,
            abandoned: false,
        }
    }

    /// The metadata a loaded record describes.
    pub(crate) fn from_value(v: TxnLogValue) -> Self {
        TxnMetadata {
            producer_id: v.producer_id,
            previous_producer_id: v.previous_producer_id,
            next_producer_id: v.next_producer_id,
            producer_epoch: v.producer_epoch,
            last_producer_epoch: -1,
            timeout_ms: v.timeout_ms,
            state: v.state,
            partitions: v.partitions,
            start_ms: v.start_ms,
            last_update_ms: v.last_update_ms,
            client_tv: v.client_tv,
            has_failed_epoch_fence: false,
            removed: false,
            pending_markers: None,
            abandoned: false,
        }
    }

    pub(crate) fn identity(&self) -> ProducerIdAndEpoch {
        ProducerIdAndEpoch::new(self.producer_id, self.producer_epoch)
    }

    /// The current state moved to `state` at `now`, everything else kept.
    fn transit(&self, state: TxnState, now: i64) -> Transit {
        Transit {
            value: TxnLogValue {
                producer_id: self.producer_id,
                producer_epoch: self.producer_epoch,
                timeout_ms: self.timeout_ms,
                state,
                partitions: if state == TxnState::Empty {
                    BTreeSet::new()
                } else {
                    self.partitions.clone()
                },
                last_update_ms: now,
                start_ms: self.start_ms,
                previous_producer_id: self.previous_producer_id,
                next_producer_id: self.next_producer_id,
                client_tv: self.client_tv,
            },
            last_producer_epoch: self.last_producer_epoch,
        }
    }

    /// Adopts a persisted transit.
    pub(crate) fn apply(&mut self, t: &Transit) {
        let v = &t.value;
        self.producer_id = v.producer_id;
        self.producer_epoch = v.producer_epoch;
        self.timeout_ms = v.timeout_ms;
        self.state = v.state;
        self.partitions = v.partitions.clone();
        self.last_update_ms = v.last_update_ms;
        self.start_ms = v.start_ms;
        self.previous_producer_id = v.previous_producer_id;
        self.next_producer_id = v.next_producer_id;
        self.client_tv = v.client_tv;
        self.last_producer_epoch = t.last_producer_epoch;
        self.has_failed_epoch_fence = false;
        self.pending_markers = None;
        self.abandoned = false;
    }

    /// InitProducerId for an existing id (Kafka's `handleInitProducerId` after the
    /// placeholder): the expected-identity check, then by state. `allocate` hands out a
    /// new producer id when the epoch is exhausted.
    pub(crate) fn prepare_init(
        &self,
        expected: Option<ProducerIdAndEpoch>,
        timeout_ms: i32,
        now: i64,
        allocate: impl FnOnce() -> Result<i64, CoordinatorError>,
    ) -> Result<InitStep, CoordinatorError> {
        if self.state.is_prepare() {
            return Err(CoordinatorError::ConcurrentTransactions);
        }
        if let Some(e) = expected {
            let valid = self.producer_epoch == -1
                || e.producer_id.0 == self.producer_id
                || (e.producer_id.0 == self.previous_producer_id && e.producer_epoch.0 >= EXHAUSTED_EPOCH);
            if !valid {
                return Err(fenced(self.producer_epoch, e.producer_epoch.0));
            }
        }
        match self.state {
            TxnState::Ongoing => return Ok(InitStep::Fence),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {}
            s => {
                return Err(CoordinatorError::UnknownServerError {
                    reason: format!("transactional id in transient state {s}"),
                })
            }
        }
        let mut t = self.transit(TxnState::Empty, now);
        t.value.timeout_ms = timeout_ms;
        t.value.start_ms = -1;
        let exhausted = self.producer_epoch >= EXHAUSTED_EPOCH;
        if exhausted && expected.is_none_or(|e| e.producer_epoch.0 == self.producer_epoch) {
            t.value.producer_id = allocate()?;
            t.value.producer_epoch = 0;
            t.value.previous_producer_id = self.producer_id;
            t.value.next_producer_id = -1;
            t.last_producer_epoch = if expected.is_some() {
                self.producer_epoch
            } else {
                -1
            };
            return Ok(InitStep::Write(t));
        }
        match expected {
            None => {
                t.value.producer_epoch = self.producer_epoch + 1;
                t.last_producer_epoch = -1;
            }
            Some(e) if self.producer_epoch == -1 || e.producer_epoch.0 == self.producer_epoch => {
                t.value.producer_epoch = self.producer_epoch + 1;
                t.last_producer_epoch = self.producer_epoch;
            }
            // A retry of the bump that produced the current epoch: the same answer.
            Some(e) if e.producer_epoch.0 == self.last_producer_epoch => {}
            Some(e) => return Err(fenced(self.producer_epoch, e.producer_epoch.0)),
        }
        Ok(InitStep::Write(t))
    }

    /// Checks a request's producer id and epoch the way AddPartitionsToTxn and
    /// AddOffsetsToTxn do (Kafka 4.x order).
    fn check_producer(&self, id: ProducerIdAndEpoch) -> Result<(), CoordinatorError> {
        if self.state.is_prepare() {
            return Err(CoordinatorError::ConcurrentTransactions);
        }
        if id.producer_id.0 != self.producer_id {
            return Err(CoordinatorError::InvalidProducerIdMapping);
        }
        if id.producer_epoch.0 != self.producer_epoch {
            return Err(fenced(self.producer_epoch, id.producer_epoch.0));
        }
        Ok(())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn / a TV2 produce's implicit add: `None` when
    /// every partition is in the ongoing transaction already.
    pub(crate) fn prepare_add(
        &self,
        id: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
        tv: TxnVersion,
        now: i64,
    ) -> Result<Option<Transit>, CoordinatorError> {
        self.check_producer(id)?;
        match self.state {
            TxnState::Ongoing if partitions.iter().all(|p| self.partitions.contains(p)) => return Ok(None),
            TxnState::Ongoing | TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {}
            s => return Err(invalid_state(s, "AddPartitionsToTxn")),
        }
        let mut t = self.transit(TxnState::Ongoing, now);
        if self.state != TxnState::Ongoing {
            t.value.partitions.clear();
            t.value.start_ms = now;
        }
        t.value.partitions.extend(partitions.iter().cloned());
        t.value.client_tv = tv.0;
        Ok(Some(t))
    }

    /// A TV0/1 produce's verification: is each partition in the ongoing transaction?
    /// Nothing is written.
    pub(crate) fn verify(
        &self,
        id: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
    ) -> Vec<Result<(), CoordinatorError>> {
        let all = |e: fn(&Self, ProducerIdAndEpoch) -> CoordinatorError| {
            partitions.iter().map(|_| Err(e(self, id))).collect()
        };
        if id.producer_id.0 != self.producer_id {
            return all(|_, _| CoordinatorError::InvalidProducerIdMapping);
        }
        if id.producer_epoch.0 != self.producer_epoch {
            return all(|m, id| fenced(m.producer_epoch, id.producer_epoch.0));
        }
        if self.state.is_prepare() {
            return all(|_, _| CoordinatorError::ConcurrentTransactions);
        }
        partitions
            .iter()
            .map(|p| {
                if self.state == TxnState::Ongoing && self.partitions.contains(p) {
                    Ok(())
                } else {
                    Err(CoordinatorError::TransactionAbortable)
                }
            })
            .collect()
    }

    /// Bumps the epoch in memory to fence the current producer (Kafka's
    /// `prepareFenceProducerEpoch`); a fence whose abort failed keeps its epoch.
    pub(crate) fn fence(&mut self) {
        if !self.has_failed_epoch_fence && self.producer_epoch < i16::MAX {
            self.producer_epoch += 1;
        }
        self.last_producer_epoch = -1;
    }

    /// The abort a fence or a timeout runs after [`TxnMetadata::fence`]: PrepareAbort at
    /// the fenced epoch, with the server's transaction version. Under TV2 a fence that
    /// reached the last epoch also names the producer id the id moves to at completion
    /// (`allocate`), so the fenced epoch is never handed out for use (KAFKA-20090).
    pub(crate) fn prepare_forced_abort(
        &self,
        server_tv: TxnVersion,
        now: i64,
        allocate: impl FnOnce() -> Result<i64, CoordinatorError>,
    ) -> Result<Transit, CoordinatorError> {
        let mut t = self.transit(TxnState::PrepareAbort, now);
        t.value.client_tv = server_tv.0;
        t.last_producer_epoch = -1;
        if server_tv.bumps_epoch() && self.producer_epoch >= EXHAUSTED_EPOCH && self.next_producer_id < 0 {
            t.value.next_producer_id = allocate()?;
        }
        Ok(t)
    }

    /// EndTxn from a client, by the request's transaction version (Kafka 4.1's dispatch).
    /// `allocate` hands out the next producer id when a TV2 bump exhausts the epoch.
    pub(crate) fn prepare_end(
        &self,
        id: ProducerIdAndEpoch,
        commit: bool,
        tv: TxnVersion,
        now: i64,
        allocate: impl FnOnce() -> Result<i64, CoordinatorError>,
    ) -> Result<EndStep, CoordinatorError> {
        let target = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        let request = if commit { "EndTxn(commit)" } else { "EndTxn(abort)" };
        let (pid, epoch) = (id.producer_id.0, id.producer_epoch.0);
        if !tv.bumps_epoch() {
            if pid != self.producer_id {
                return Err(CoordinatorError::InvalidProducerIdMapping);
            }
            if epoch != self.producer_epoch {
                return Err(fenced(self.producer_epoch, epoch));
            }
            if self.state.is_prepare() {
                return Err(CoordinatorError::ConcurrentTransactions);
            }
            return match (self.state, commit) {
                (TxnState::Ongoing, _) => {
                    let mut t = self.transit(target, now);
                    t.value.client_tv = tv.0;
                    Ok(EndStep::Prepare(t))
                }
                (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                    Ok(EndStep::AlreadyDone(ProducerIdAndEpoch::new(-1, -1)))
                }
                (s, _) => Err(invalid_state(s, request)),
            };
        }
        let retry_bump = i32::from(self.producer_epoch) == i32::from(epoch) + 1;
        let retry_overflow =
            self.previous_producer_id == pid && epoch == EXHAUSTED_EPOCH && self.producer_epoch == 0;
        let is_retry = retry_bump || retry_overflow;
        if pid != self.producer_id && !retry_overflow {
            return Err(CoordinatorError::InvalidProducerIdMapping);
        }
        if self.state.is_prepare() {
            return Err(CoordinatorError::ConcurrentTransactions);
        }
        let current = epoch == self.producer_epoch;
        let valid = match self.state {
            TxnState::Ongoing | TxnState::Empty => current,
            _ => is_retry || current,
        };
        if !valid {
            return Err(fenced(self.producer_epoch, epoch));
        }
        match (self.state, commit, is_retry) {
            (TxnState::Ongoing, _, _) => {}
            (TxnState::CompleteCommit, true, true) | (TxnState::CompleteAbort, false, true) => {
                // The last epoch only ever fences; it is never an identity to use.
                if self.producer_epoch == i16::MAX {
                    return Err(fenced(self.producer_epoch, epoch));
                }
                return Ok(EndStep::AlreadyDone(self.identity()));
            }
            // An abort with nothing open still bumps the epoch (KIP-890's empty abort).
            (TxnState::CompleteCommit | TxnState::CompleteAbort | TxnState::Empty, false, false) => {}
            (s, _, _) => return Err(invalid_state(s, request)),
        }
        let mut t = self.transit(target, now);
        t.value.client_tv = tv.0;
        if self.state != TxnState::Ongoing {
            t.value.partitions.clear();
            t.value.start_ms = now;
        }
        t.last_producer_epoch = self.producer_epoch;
        if self.producer_epoch >= EXHAUSTED_EPOCH {
            t.value.next_producer_id = allocate()?;
            t.value.producer_epoch = i16::MAX;
        } else {
            t.value.producer_epoch = self.producer_epoch + 1;
        }
        Ok(EndStep::Prepare(t))
    }

    /// The Complete state after every marker of a Prepare state was written; a TV2 end at
    /// an exhausted epoch moves to its next producer id here.
    pub(crate) fn prepare_complete(&self, now: i64) -> Transit {
        let state = if self.state == TxnState::PrepareCommit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        let mut t = self.transit(state, now);
        t.value.partitions.clear();
        if self.next_producer_id >= 0 {
            t.value.previous_producer_id = self.producer_id;
            t.value.producer_id = self.next_producer_id;
            t.value.producer_epoch = 0;
            t.value.next_producer_id = -1;
        }
        t
    }

    /// Whether a timeout sweep at `now` aborts this transaction.
    pub(crate) fn timed_out(&self, now: i64) -> bool {
        self.state == TxnState::Ongoing && self.start_ms.saturating_add(i64::from(self.timeout_ms)) < now
    }

    /// Whether `transactional.id.expiration.ms` removes this id at `now`.
    pub(crate) fn expirable(&self, now: i64, expiration_ms: i64) -> bool {
        matches!(
            self.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        ) && self.last_update_ms <= now.saturating_sub(expiration_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pid: i64, epoch: i16, state: TxnState) -> TxnMetadata {
        let mut m = TxnMetadata::placeholder(pid, 60_000, 0);
        m.producer_epoch = epoch;
        m.state = state;
        if state == TxnState::Ongoing || state.is_prepare() {
            m.partitions.insert(TopicPartition::new("t", 0));
            m.start_ms = 0;
        }
        m
    }

    fn id(pid: i64, epoch: i16) -> ProducerIdAndEpoch {
        ProducerIdAndEpoch::new(pid, epoch)
    }

    fn no_alloc() -> Result<i64, CoordinatorError> {
        panic!("no producer id should be allocated")
    }

    fn write(step: InitStep) -> Transit {
        match step {
            InitStep::Write(t) => t,
            InitStep::Fence => panic!("fence"),
        }
    }

    #[test]
    fn test_bump_epoch_not_allowed_if_epochs_exhausted() {
        // Exhausted epoch: InitProducerId moves to a new producer id.
        let m = meta(1, EXHAUSTED_EPOCH, TxnState::Empty);
        let t = write(m.prepare_init(None, 1000, 5, || Ok(9)).expect("init"));
        assert_eq!((t.value.producer_id, t.value.producer_epoch), (9, 0));
        assert_eq!(t.value.previous_producer_id, 1);
    }

    #[test]
    fn test_fence_producer_after_epochs_exhausted() {
        let mut m = meta(1, EXHAUSTED_EPOCH, TxnState::Ongoing);
        m.fence();
        assert_eq!(m.producer_epoch, i16::MAX);
        assert_eq!(m.last_producer_epoch, -1);
        let t = m
            .prepare_forced_abort(TxnVersion::TV0, 7, no_alloc)
            .expect("abort");
        assert_eq!(
            (t.value.state, t.value.producer_epoch),
            (TxnState::PrepareAbort, i16::MAX)
        );
        // TV2 (KAFKA-20090): the fence names the next producer id, which completion moves to,
        // so the last epoch is never handed out.
        let t = m
            .prepare_forced_abort(TxnVersion::TV2, 7, || Ok(5))
            .expect("abort");
        assert_eq!(t.value.next_producer_id, 5);
        let mut done = m.clone();
        done.apply(&t);
        let c = done.prepare_complete(8);
        assert_eq!((c.value.producer_id, c.value.producer_epoch), (5, 0));
    }

    #[test]
    fn test_epoch_bump_on_end_txn_and_overflow() {
        let m = meta(1, 10, TxnState::Ongoing);
        let EndStep::Prepare(t) = m
            .prepare_end(id(1, 10), true, TxnVersion::TV2, 3, no_alloc)
            .expect("end")
        else {
            panic!("prepare")
        };
        assert_eq!((t.value.producer_epoch, t.last_producer_epoch), (11, 10));
        let m = meta(1, EXHAUSTED_EPOCH, TxnState::Ongoing);
        let EndStep::Prepare(t) = m
            .prepare_end(id(1, EXHAUSTED_EPOCH), true, TxnVersion::TV2, 3, || Ok(2))
            .expect("end")
        else {
            panic!("prepare")
        };
        assert_eq!((t.value.producer_epoch, t.value.next_producer_id), (i16::MAX, 2));
        let mut m2 = m.clone();
        m2.apply(&t);
        let c = m2.prepare_complete(4);
        assert_eq!(
            (
                c.value.producer_id,
                c.value.producer_epoch,
                c.value.previous_producer_id
            ),
            (2, 0, 1)
        );
    }

    #[test]
    fn test_epoch_bump_with_current_epoch_provided_and_retry() {
        let m = meta(1, 735, TxnState::Empty);
        let t = write(m.prepare_init(Some(id(1, 735)), 1000, 5, no_alloc).expect("init"));
        assert_eq!((t.value.producer_epoch, t.last_producer_epoch), (736, 735));
        let mut m2 = m.clone();
        m2.apply(&t);
        // The retry with the old epoch gets the same answer.
        let t2 = write(
            m2.prepare_init(Some(id(1, 735)), 1000, 6, no_alloc)
                .expect("retry"),
        );
        assert_eq!(t2.value.producer_epoch, 736);
        // An epoch that is neither current nor last is fenced.
        assert!(matches!(
            m2.prepare_init(Some(id(1, 700)), 1000, 6, no_alloc),
            Err(CoordinatorError::ProducerFenced { .. })
        ));
    }

    #[test]
    fn empty_with_partitions_never_written_and_verify_answers_per_partition() {
        let m = meta(1, 0, TxnState::Ongoing);
        let parts = [TopicPartition::new("t", 0), TopicPartition::new("t", 1)];
        let r = m.verify(id(1, 0), &parts);
        assert!(r[0].is_ok());
        assert!(matches!(r[1], Err(CoordinatorError::TransactionAbortable)));
        assert!(m
            .verify(id(2, 0), &parts)
            .iter()
            .all(|r| matches!(r, Err(CoordinatorError::InvalidProducerIdMapping))));
        let t = write(
            m.clone()
                .tap_complete()
                .prepare_init(None, 5, 1, no_alloc)
                .expect("init"),
        );
        assert!(t.value.partitions.is_empty());
    }

    impl TxnMetadata {
        fn tap_complete(mut self) -> Self {
            self.state = TxnState::CompleteCommit;
            self
        }
    }
}
