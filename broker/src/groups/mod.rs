//! Consumer-group membership, Kafka's classic protocol: JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, DescribeGroups and ListGroups. The assignors run in the clients; the broker
//! chooses a protocol every member supports, elects a leader, collects the assignment
//! from it, and tells the store each group's generation and members so that offset
//! commits (plain and transactional, KIP-447) are checked against them.
//!
//! States: Empty → PreparingRebalance (a join, a leave, an expired session) →
//! CompletingRebalance (every known member rejoined, or the rebalance timeout passed:
//! generation + 1, the join answers go out) → Stable (the leader's SyncGroup). A join with
//! changed protocols during CompletingRebalance, or a leader's join while Stable, restarts
//! the rebalance, and pending syncs get `REBALANCE_IN_PROGRESS`; an unchanged rejoin gets
//! the current generation (`join.rs`). From JoinGroup v4 a new dynamic member first gets
//! its id with MEMBER_ID_REQUIRED, and a rebalance waits for such pending ids too. A group
//! that settles (Stable or Empty) is stored, and resumes after a restart (`stored.rs`).
//!
//! A group lives on one `__consumer_offsets` partition (`eoslog::partition_for`). Each
//! partition's groups have their own lock, timer and record writer, as the store keeps
//! each partition's membership, so an offsets sweep writing one partition holds up only
//! that partition's groups (and ListGroups, which reads every partition); waits run in
//! place (`handlers::in_place`), never stalling the runtime's workers.

mod admin;
mod describe;
mod join;
mod session;
mod stored;
mod sync;

pub(crate) use admin::{delete_groups, forget_deleted};
pub(crate) use describe::{describe, list};
pub(crate) use join::join;
pub(crate) use session::{heartbeat, leave, timer_loop};
pub(crate) use stored::writer_loop;
pub(crate) use sync::sync;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use eoslog::{GroupMember, GroupMembership, GroupState, KafkaError};
use indexmap::IndexMap;
use kafka_protocol::ResponseError;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::oneshot;
use tokio::time::Instant;

use self::stored::Change;
use crate::handlers::in_place;
use crate::{BrokerConfig, Shared};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// What a JoinGroup waits for.
#[derive(Debug, Default)]
struct JoinAnswer {
    error: i16,
    generation: i32,
    protocol_type: String,
    protocol: String,
    leader: String,
    member_id: String,
    /// For the leader: every member and its subscription.
    members: Vec<(String, Option<String>, Bytes)>,
}

/// What a SyncGroup waits for.
#[derive(Debug, Default)]
struct SyncAnswer {
    error: i16,
    assignment: Bytes,
}

struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    last_seen: Instant,
    join_waiter: Option<oneshot::Sender<JoinAnswer>>,
    sync_waiter: Option<oneshot::Sender<SyncAnswer>>,
    assignment: Bytes,
}

struct Group {
    state: State,
    generation: i32,
    protocol_type: String,
    protocol: String,
    leader: Option<String>,
    members: IndexMap<String, Member>,
    /// PreparingRebalance completes by then at the latest.
    rebalance_deadline: Instant,
    /// The first join of an empty group waits until then for others
    /// (`group.initial.rebalance.delay.ms`).
    initial_until: Instant,
    /// The leader's assignment is being stored: the group turns Stable, and the syncs are
    /// answered, once the record is written (`settle_after_store`).
    storing: bool,
    /// The topics the current generation's members subscribe to (Kafka's
    /// `subscribedTopics`): set when a generation starts, kept through the next rebalance;
    /// `None` while not known.
    subscribed_topics: Option<Vec<String>>,
    /// Member ids handed out with MEMBER_ID_REQUIRED (KIP-394), each until its session
    /// would expire: a join with one of them adds that member, and a rebalance waits for
    /// them as Kafka's `hasAllMembersJoined` does.
    pending: HashMap<String, Instant>,
    /// The rebalance under way started from Empty (Kafka's initial rebalance).
    initial: bool,
}

impl Group {
    fn new(now: Instant) -> Group {
        Group {
            state: State::Empty,
            generation: 0,
            protocol_type: String::new(),
            protocol: String::new(),
            leader: None,
            members: IndexMap::new(),
            rebalance_deadline: now,
            initial_until: now,
            storing: false,
            subscribed_topics: None,
            pending: HashMap::new(),
            initial: false,
        }
    }

    /// Forgets the pending member ids whose session ran out; whether any did.
    fn expire_pending(&mut self, now: Instant) -> bool {
        let before = self.pending.len();
        self.pending.retain(|_, until| now <= *until);
        self.pending.len() != before
    }

    /// Takes `member_id` out of the pending ids: whether it was pending and not expired.
    fn take_pending(&mut self, member_id: &str, now: Instant) -> bool {
        self.pending.remove(member_id).is_some_and(|until| now <= until)
    }

    /// A group that has not formed: no generation and no member, at most pending ids.
    /// Only a MEMBER_ID_REQUIRED answer creates one, and the store is never told of it.
    fn unformed(&self) -> bool {
        self.generation == 0 && self.members.is_empty()
    }

    /// An unformed group whose pending ids all expired: it is forgotten, so that joins
    /// that never come back leave nothing.
    fn never_formed(&self) -> bool {
        self.unformed() && self.pending.is_empty()
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Starts a rebalance: pending syncs are told to rejoin.
    fn prepare_rebalance(&mut self, now: Instant) {
        self.storing = false;
        if self.state == State::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncAnswer {
                        error: KafkaError::RebalanceInProgress.code(),
                        ..SyncAnswer::default()
                    });
                }
            }
        }
        if self.state != State::PreparingRebalance {
            self.rebalance_deadline = now + self.max_rebalance_timeout();
            self.initial = self.state == State::Empty;
        }
        self.state = State::PreparingRebalance;
    }

    /// The protocol the group selects (Kafka's `selectProtocol`), see [`select_protocol`].
    fn common_protocol(&self) -> Option<String> {
        let current = (!self.protocol.is_empty()).then_some(self.protocol.as_str());
        select_protocol(self.members.values().map(|m| m.protocols.as_slice()), current)
    }

    /// Ends PreparingRebalance when every member rejoined (after the initial delay), or
    /// when the deadline passed (members that did not rejoin are removed).
    fn try_complete_join(&mut self, now: Instant) -> bool {
        if self.state != State::PreparingRebalance {
            return false;
        }
        // A group's first rebalance does not wait for pending ids: Kafka completes it when
        // its initial delay ends (`tryCompleteInitialRebalanceElseSchedule`); later ones wait
        // for them as for members (`hasAllMembersJoined`).
        self.expire_pending(now);
        let all_joined = (self.initial || self.pending.is_empty())
            && self.members.values().all(|m| m.join_waiter.is_some());
        let delayed = now < self.initial_until;
        if (delayed || !all_joined) && now < self.rebalance_deadline {
            return false;
        }
        self.members.retain(|_, m| m.join_waiter.is_some());
        self.generation += 1;
        if self.members.is_empty() {
            // An emptied consumer group subscribes to nothing (Kafka: an empty set).
            self.subscribed_topics = (self.joined_protocol_type() == "consumer").then(Vec::new);
            self.state = State::Empty;
            self.protocol.clear();
            self.protocol_type.clear();
            self.leader = None;
            return true;
        }
        self.protocol = self.common_protocol().unwrap_or_default();
        self.protocol_type = self
            .members
            .values()
            .next()
            .map(|m| m.protocol_type.clone())
            .unwrap_or_default();
        self.keep_leader_a_member();
        self.subscribed_topics = admin::subscribed_topics(self);
        self.state = State::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let roster = self.roster();
        for (id, m) in &mut self.members {
            m.last_seen = now;
            m.assignment = Bytes::new();
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinAnswer {
                    error: 0,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol: self.protocol.clone(),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader { roster.clone() } else { Vec::new() },
                });
            }
        }
        true
    }

    /// Kafka's `ClassicGroup.validateMember`: a request that names a static instance id must
    /// come from the member holding it (nobody holds it: `UNKNOWN_MEMBER_ID`; another member
    /// does, a newer instance having taken its place: `FENCED_INSTANCE_ID`); and every request
    /// must come from a member (`UNKNOWN_MEMBER_ID`). `None`: it may go on.
    fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Option<i16> {
        if let Some(i) = instance_id {
            let owner = self
                .members
                .iter()
                .find(|(_, m)| m.instance_id.as_deref() == Some(i))
                .map(|(id, _)| id.as_str());
            match owner {
                None => return Some(KafkaError::UnknownMemberId.code()),
                Some(owner) if owner != member_id => return Some(ResponseError::FencedInstanceId.code()),
                Some(_) => {}
            }
        }
        (!self.members.contains_key(member_id)).then(|| KafkaError::UnknownMemberId.code())
    }

    /// Every member and its subscription to the chosen protocol (what the leader gets).
    fn roster(&self) -> Vec<(String, Option<String>, Bytes)> {
        self.members
            .iter()
            .map(|(id, m)| {
                let meta = m
                    .protocols
                    .iter()
                    .find(|(n, _)| *n == self.protocol)
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                (id.clone(), m.instance_id.clone(), meta)
            })
            .collect()
    }

    /// The join answer of the current generation for `member_id`, naming `leader`: the
    /// roster if `member_id` leads. For a static member that took its old place, `leader` is
    /// the leader before the replacement, as Kafka's `updateStaticMemberAndRebalance` does
    /// for JoinGroup before v9: a returning leader gets the roster but does not find itself
    /// named leader, so it runs no assignment that a Stable group would never hand out.
    fn generation_answer(&self, member_id: &str, leader: Option<String>) -> JoinAnswer {
        JoinAnswer {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            members: if self.leader.as_deref() == Some(member_id) {
                self.roster()
            } else {
                Vec::new()
            },
            leader: leader.unwrap_or_default(),
            member_id: member_id.to_owned(),
        }
    }

    /// The protocol type of the group, or, for a group joined from Empty whose first
    /// rebalance has not completed, of its first member (Kafka sets it at the first join).
    fn joined_protocol_type(&self) -> &str {
        match self.members.values().next() {
            Some(m) if self.protocol_type.is_empty() => &m.protocol_type,
            _ => &self.protocol_type,
        }
    }

    /// A leader that is no longer a member is replaced by the first member.
    fn keep_leader_a_member(&mut self) {
        if !self.leader.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    /// Tells the store the group's generation and members: offset commits are checked
    /// against them. Called under the lock of the group's partition, so that the store
    /// learns of a group's changes in their order; it waits while an offsets sweep or
    /// DeleteGroups writes tombstones to this group's `__consumer_offsets` partition (the
    /// store holds that partition's membership map across the append, not across its
    /// fsync), and so do the other groups of that partition, none of another.
    fn tell_membership(&self, store: &eoslog::Store, group_id: &str) {
        let membership = self.membership();
        if let Err(e) = in_place(|| store.offsets().set_group_membership(group_id, membership)) {
            tracing::warn!(target: "eoslog_broker", group = group_id, error = %e, "membership not recorded");
        }
    }

    fn membership(&self) -> GroupMembership {
        GroupMembership {
            generation: if self.generation == 0 && self.members.is_empty() {
                -1
            } else {
                self.generation
            },
            members: self
                .members
                .iter()
                .map(|(id, m)| GroupMember {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                })
                .collect(),
            state: match self.state {
                State::Empty => GroupState::Empty,
                State::PreparingRebalance => GroupState::PreparingRebalance,
                State::CompletingRebalance => GroupState::CompletingRebalance,
                State::Stable => GroupState::Stable,
            },
            protocol_type: self.joined_protocol_type().to_owned(),
            subscribed_topics: self.subscribed_topics.clone(),
        }
    }
}

/// Kafka's `selectProtocol`: among the protocols every member supports, each member votes
/// for the first it lists, and the most votes win. A tie goes to `current` (the group's
/// protocol) if it is among the winners, else to the protocol voted for first in member
/// order, so that a member rejoining at the end of the order cannot flip it (Kafka breaks
/// ties by a hash map's order).
fn select_protocol<'a>(
    members: impl Iterator<Item = &'a [(String, Bytes)]>,
    current: Option<&str>,
) -> Option<String> {
    let members: Vec<&[(String, Bytes)]> = members.collect();
    let supported = |name: &str| members.iter().all(|m| m.iter().any(|(n, _)| n == name));
    let mut votes: Vec<(&str, usize)> = Vec::new();
    for m in &members {
        let Some((choice, _)) = m.iter().find(|(n, _)| supported(n)) else {
            continue;
        };
        match votes.iter_mut().find(|(n, _)| *n == choice.as_str()) {
            Some((_, count)) => *count += 1,
            None => votes.push((choice, 1)),
        }
    }
    let most = votes.iter().map(|&(_, count)| count).max()?;
    let winners = || {
        votes
            .iter()
            .filter(|&&(_, count)| count == most)
            .map(|&(name, _)| name)
    };
    winners()
        .find(|&name| Some(name) == current)
        .or_else(|| winners().next())
        .map(str::to_owned)
}

/// Every group of the broker, locked per `__consumer_offsets` partition as the store's
/// membership maps are: a group's change waits only for the groups of its own partition
/// (and, while an offsets sweep or DeleteGroups writes that partition's tombstones, for
/// the write), never for another partition's; only ListGroups reads them all.
pub(crate) struct Groups {
    /// Partition `p`'s groups and their machinery at index `p`.
    partitions: Vec<Partition>,
    initial_delay: Duration,
    min_session_ms: i32,
    max_session_ms: i32,
    next_member: AtomicU64,
    /// Random per broker start: member ids never repeat across restarts, so a zombie that
    /// kept an id from before a crash cannot pass for a member of a new generation.
    instance: u64,
}

/// One `__consumer_offsets` partition's groups, with what serves them alone.
struct Partition {
    /// The groups whose ids hash to this partition.
    groups: Mutex<HashMap<String, Group>>,
    /// Woken when a group is added: the partition's timer sleeps on it while the partition
    /// has no group (a broker of 50 empty partitions wakes for nothing).
    added: tokio::sync::Notify,
    /// The partition's settled groups to store, in order; its `writer_loop` takes the
    /// receiver. A write that waits for this partition (its sweep) holds up no other
    /// partition's records.
    to_store: tokio::sync::mpsc::UnboundedSender<Change>,
    changes: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Change>>>,
}

impl Groups {
    /// The broker's groups: every group stored in `store` resumes.
    pub(crate) fn new(config: &BrokerConfig, store: &eoslog::Store) -> Groups {
        let mut shards: Vec<HashMap<String, Group>> = (0..store.config().offsets_partitions)
            .map(|_| HashMap::new())
            .collect();
        for (id, g) in stored::resume(store) {
            shards[shard_of(store, &id)].insert(id, g);
        }
        Groups {
            partitions: shards
                .into_iter()
                .map(|groups| {
                    let (to_store, changes) = tokio::sync::mpsc::unbounded_channel();
                    Partition {
                        groups: Mutex::new(groups),
                        added: tokio::sync::Notify::new(),
                        to_store,
                        changes: Mutex::new(Some(changes)),
                    }
                })
                .collect(),
            initial_delay: Duration::from_millis(config.group_initial_rebalance_delay_ms),
            min_session_ms: config.group_min_session_timeout_ms,
            max_session_ms: config.group_max_session_timeout_ms,
            next_member: AtomicU64::new(1),
            instance: {
                use std::hash::{BuildHasher, Hasher};
                // std's RandomState is seeded from the operating system's randomness.
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u128(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos()),
                );
                h.finish()
            },
        }
    }

    /// The lock of the groups of `group_id`'s partition: the one to hold to read or change
    /// that group.
    fn lock(&self, store: &eoslog::Store, group_id: &str) -> MutexGuard<'_, HashMap<String, Group>> {
        lock_shard(&self.partitions[shard_of(store, group_id)].groups)
    }

    /// Wakes the timer of `group_id`'s partition: the group is being added to it.
    fn added(&self, store: &eoslog::Store, group_id: &str) {
        self.partitions[shard_of(store, group_id)].added.notify_one();
    }

    /// The number of partitions (of locks, and of writers).
    pub(crate) fn partitions(&self) -> usize {
        self.partitions.len()
    }

    /// Every partition's groups, one lock at a time (ListGroups: it waits for each).
    fn shards(&self) -> impl Iterator<Item = MutexGuard<'_, HashMap<String, Group>>> {
        self.partitions.iter().map(|p| lock_shard(&p.groups))
    }
}

/// A partition's groups, waited for (its holder may be waiting for a sweep's write) without
/// stalling the runtime.
fn lock_shard(m: &Mutex<HashMap<String, Group>>) -> MutexGuard<'_, HashMap<String, Group>> {
    m.try_lock().unwrap_or_else(|| in_place(|| m.lock()))
}

fn shard_of(store: &eoslog::Store, group_id: &str) -> usize {
    usize::try_from(store.offsets().partition_for(group_id)).unwrap_or(0)
}

/// Tells the store the group's generation and members (offset commits are checked
/// against them); a group that just emptied is also stored (as Kafka stores it).
fn publish(shared: &Shared, group_id: &str, g: &Group) {
    tracing::info!(
        target: "eoslog_broker",
        group = group_id,
        generation = g.generation,
        state = g.state.name(),
        members = ?g.members.keys().collect::<Vec<_>>(),
        leader = g.leader.as_deref().unwrap_or(""),
        protocol = %g.protocol,
        "group changed"
    );
    g.tell_membership(&shared.store, group_id);
    if g.state == State::Empty {
        drop(store(shared, group_id, g));
    }
}

/// Queues the group's record; the receiver gets the outcome once it is written (an error
/// is the Kafka code to answer with). A member learns of a new generation's assignment,
/// or of a static member's new id, only after this succeeded, as in Kafka: so a broker
/// that dies before the write never resumes a group older than what a member acted on.
fn store(shared: &Shared, group_id: &str, g: &Group) -> oneshot::Receiver<Result<(), i16>> {
    let (tx, rx) = oneshot::channel();
    // Fails only once the writer has stopped (shutdown); the receiver then reports it.
    let _ = shared.groups.partitions[shard_of(&shared.store, group_id)]
        .to_store
        .send((group_id.to_owned(), Some(g.to_stored(shared.store.now_ms())), tx));
    rx
}

/// Queues the deletion of a group with its offsets (DeleteGroups), after every record
/// queued before it.
fn delete(shared: &Shared, group_id: &str) -> oneshot::Receiver<Result<(), i16>> {
    let (tx, rx) = oneshot::channel();
    let _ = shared.groups.partitions[shard_of(&shared.store, group_id)]
        .to_store
        .send((group_id.to_owned(), None, tx));
    rx
}

/// The outcome of a queued record (a writer that stopped is COORDINATOR_NOT_AVAILABLE).
pub(super) async fn stored(rx: oneshot::Receiver<Result<(), i16>>) -> Result<(), i16> {
    rx.await
        .unwrap_or(Err(ResponseError::CoordinatorNotAvailable.code()))
}

#[cfg(test)]
mod tests;
