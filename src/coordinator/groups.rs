//! Consumer-group membership as offset commits check it. Membership itself (join, sync,
//! heartbeat) belongs to the embedding broker's group coordinator, which tells the store
//! each group's generation and members ([`crate::Offsets::set_group_membership`]); a
//! group it never described is a "simple" group whose commits carry generation -1.

use super::error::CoordinatorError;

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The member id the coordinator assigned.
    pub member_id: String,
    /// The static member's `group.instance.id`, if any.
    pub instance_id: Option<String>,
}

/// A classic group's state (Kafka's `ClassicGroupState`), as its coordinator reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GroupState {
    /// No members.
    #[default]
    Empty,
    /// Members are (re)joining; commits of the current generation are still accepted.
    PreparingRebalance,
    /// Between the joins and the leader's SyncGroup: plain commits are refused with
    /// `REBALANCE_IN_PROGRESS`.
    CompletingRebalance,
    /// Settled: every member has its assignment.
    Stable,
}

/// A group's generation and members, as its group coordinator knows them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMembership {
    /// The generation (-1 for none).
    pub generation: i32,
    /// The members, joining ones included; none means the group is Empty.
    pub members: Vec<GroupMember>,
    /// The group's state.
    pub state: GroupState,
    /// The protocol type its members joined with (`"consumer"` for Kafka consumers).
    pub protocol_type: String,
    /// The topics the members subscribe to, for a consumer group whose every member's
    /// subscription reads (Kafka's `subscribedTopics`; see
    /// [`crate::decode::subscription_topics`]); `None`: not known. While Stable, the offsets
    /// of other topics expire (KIP-496); OffsetDelete may delete them at any time.
    pub subscribed_topics: Option<Vec<String>>,
}

impl GroupMembership {
    /// Whether the group is a consumer group (protocol type `"consumer"`).
    #[must_use]
    pub fn is_consumer_group(&self) -> bool {
        self.protocol_type == CONSUMER_PROTOCOL_TYPE
    }
}

/// The protocol type of Kafka's consumers.
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Who commits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Committer<'a> {
    pub generation: i32,
    pub member_id: &'a str,
    pub instance_id: Option<&'a str>,
    pub transactional: bool,
}

/// Kafka's commit validation for a classic group (`ClassicGroup.validateOffsetCommit`);
/// `group` is `None` for a group nobody described.
pub(crate) fn validate(group: Option<&GroupMembership>, c: &Committer<'_>) -> Result<(), CoordinatorError> {
    let Some(g) = group else {
        // A group that does not exist: a simple consumer (generation -1) creates it.
        return if c.generation < 0 {
            Ok(())
        } else {
            Err(CoordinatorError::IllegalGeneration {
                current: -1,
                got: c.generation,
            })
        };
    };
    if c.generation < 0 && g.state == GroupState::Empty {
        return Ok(());
    }
    // A transactional commit that names no member (a producer that sends offsets without
    // the consumer's group metadata) is accepted, as in Kafka.
    if c.transactional && c.generation < 0 && c.member_id.is_empty() && c.instance_id.is_none() {
        return Ok(());
    }
    if let Some(instance) = c.instance_id {
        match g
            .members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some(instance))
        {
            None => {
                return Err(CoordinatorError::UnknownMemberId {
                    member_id: c.member_id.to_owned(),
                })
            }
            Some(m) if m.member_id != c.member_id => {
                return Err(CoordinatorError::FencedInstanceId {
                    instance_id: instance.to_owned(),
                })
            }
            Some(_) => {}
        }
    } else if !g.members.iter().any(|m| m.member_id == c.member_id) {
        return Err(CoordinatorError::UnknownMemberId {
            member_id: c.member_id.to_owned(),
        });
    }
    if c.generation != g.generation {
        return Err(CoordinatorError::IllegalGeneration {
            current: g.generation,
            got: c.generation,
        });
    }
    if !c.transactional && g.state == GroupState::CompletingRebalance {
        return Err(CoordinatorError::RebalanceInProgress);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupMembership {
        GroupMembership {
            generation: 3,
            members: vec![
                GroupMember {
                    member_id: "m1".into(),
                    instance_id: None,
                },
                GroupMember {
                    member_id: "m2".into(),
                    instance_id: Some("i2".into()),
                },
            ],
            state: GroupState::Stable,
            protocol_type: "consumer".into(),
            subscribed_topics: None,
        }
    }

    fn c(
        generation: i32,
        member_id: &'static str,
        instance_id: Option<&'static str>,
        transactional: bool,
    ) -> Committer<'static> {
        Committer {
            generation,
            member_id,
            instance_id,
            transactional,
        }
    }

    #[test]
    fn txn_offset_commit_generation_checks() {
        let g = group();
        assert!(validate(Some(&g), &c(3, "m1", None, true)).is_ok());
        assert!(matches!(
            validate(Some(&g), &c(2, "m1", None, true)),
            Err(CoordinatorError::IllegalGeneration { current: 3, got: 2 })
        ));
        assert!(matches!(
            validate(Some(&g), &c(3, "mx", None, true)),
            Err(CoordinatorError::UnknownMemberId { .. })
        ));
        assert!(matches!(
            validate(Some(&g), &c(3, "m1", Some("i2"), true)),
            Err(CoordinatorError::FencedInstanceId { .. })
        ));
        assert!(matches!(
            validate(Some(&g), &c(3, "m1", Some("i9"), true)),
            Err(CoordinatorError::UnknownMemberId { .. })
        ));
        // No member named: accepted for a transactional commit, refused for a plain one.
        assert!(validate(Some(&g), &c(-1, "", None, true)).is_ok());
        assert!(validate(Some(&g), &c(-1, "", None, false)).is_err());
        // Generation -1 is a simple consumer's commit: only an Empty group takes it (Kafka
        // checks the state: a group whose last member left mid-rebalance is not Empty yet).
        let mut left = group();
        left.members.clear();
        left.state = GroupState::PreparingRebalance;
        assert!(validate(Some(&left), &c(-1, "", None, false)).is_err());
        left.state = GroupState::Empty;
        assert!(validate(Some(&left), &c(-1, "", None, false)).is_ok());
        // Unknown group: generation -1 creates it, anything else is ILLEGAL_GENERATION.
        assert!(validate(None, &c(-1, "", None, true)).is_ok());
        assert!(matches!(
            validate(None, &c(1, "m", None, true)),
            Err(CoordinatorError::IllegalGeneration { .. })
        ));
        let mut r = group();
        r.state = GroupState::CompletingRebalance;
        assert!(matches!(
            validate(Some(&r), &c(3, "m1", None, false)),
            Err(CoordinatorError::RebalanceInProgress)
        ));
        assert!(validate(Some(&r), &c(3, "m1", None, true)).is_ok());
    }
}
