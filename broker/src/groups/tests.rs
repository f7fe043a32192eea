//! Unit tests of the group state machine's bookkeeping.

use super::join::client_prefix;
use super::*;

fn member(topics: &[&str], waiting: bool) -> Member {
    let mut sub = 0i16.to_be_bytes().to_vec();
    sub.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        sub.extend_from_slice(&(t.len() as i16).to_be_bytes());
        sub.extend_from_slice(t.as_bytes());
    }
    Member {
        instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(10),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from(sub))],
        last_seen: Instant::now(),
        join_waiter: waiting.then(|| oneshot::channel().0),
        sync_waiter: None,
        assignment: Bytes::new(),
    }
}

#[test]
fn subscribed_topics_are_the_generations_and_last_through_the_next_rebalance() {
    let now = Instant::now();
    let mut g = Group::new(now);
    g.members.insert("a".into(), member(&["in"], true));
    g.members.insert("b".into(), member(&["other"], true));
    g.prepare_rebalance(now);
    assert_eq!(g.membership().subscribed_topics, None, "no generation yet");
    assert!(g.try_complete_join(now));
    let both = Some(vec!["in".to_owned(), "other".to_owned()]);
    assert_eq!(g.membership().subscribed_topics, both);
    // The only member subscribing to `other` leaves: until the next generation starts,
    // Kafka still counts `other` as subscribed (OffsetDelete answers
    // GROUP_SUBSCRIBED_TO_TOPIC for it).
    g.members.shift_remove("b");
    g.prepare_rebalance(now);
    let m = g.membership();
    assert_eq!(
        (m.state, m.subscribed_topics),
        (GroupState::PreparingRebalance, both)
    );
    // The group empties: an Empty consumer group subscribes to nothing.
    g.members.shift_remove("a");
    g.rebalance_deadline = now;
    assert!(g.try_complete_join(now));
    assert_eq!(g.membership().subscribed_topics, Some(Vec::new()));
}

#[test]
fn member_ids_fit_a_kafka_string_whatever_the_client_id() {
    let long = "é".repeat(20_000); // 40,000 bytes
    let prefix = client_prefix(&long);
    let id = format!("{prefix}-{:016x}-{:x}", u64::MAX, u64::MAX);
    assert!(id.len() <= i16::MAX as usize, "{} bytes", id.len());
    assert!(prefix.len() > 32_000, "only what does not fit is cut");
    assert_eq!(client_prefix("consumer-1"), "consumer-1");
}

#[test]
fn the_selected_protocol_is_kafkas_vote_among_the_common_ones() {
    let list = |names: &[&str]| -> Vec<(String, Bytes)> {
        names.iter().map(|n| ((*n).to_owned(), Bytes::new())).collect()
    };
    let select = |members: &[&[&str]]| {
        let lists: Vec<_> = members.iter().map(|m| list(m)).collect();
        select_protocol(lists.iter().map(Vec::as_slice), None)
    };
    // Most first choices win, whoever joined first.
    assert_eq!(
        select(&[&["range", "coop"], &["coop", "range"], &["coop", "range"]]).as_deref(),
        Some("coop")
    );
    // A member votes for its first choice every member supports.
    assert_eq!(
        select(&[&["sticky", "range"], &["range"], &["range", "sticky"]]).as_deref(),
        Some("range")
    );
    // A tie goes to the group's current protocol, else to the first vote in member order.
    assert_eq!(select(&[&["a", "b"], &["b", "a"]]).as_deref(), Some("a"));
    let tied = [list(&["b", "a"]), list(&["a", "b"])];
    assert_eq!(
        select_protocol(tied.iter().map(Vec::as_slice), Some("a")).as_deref(),
        Some("a"),
        "a member rejoining at the end of the order does not flip a tie"
    );
    assert_eq!(select(&[&["a"], &["b"]]), None, "nothing in common");
    assert_eq!(select(&[]), None);
}
