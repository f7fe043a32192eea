//! DescribeGroups and ListGroups: what the broker knows of its groups, for admin tools
//! (`kafka-consumer-groups --describe`, `--list`) and for debugging.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, ListGroupsRequest, ListGroupsResponse,
};

use super::State;
use crate::handlers::{in_place, s, Ctx};

pub(crate) fn describe(ctx: &Ctx, r: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let mut out = DescribeGroupsResponse::default();
    out.groups = r
        .groups
        .iter()
        .map(|id| {
            let mut d = DescribedGroup::default();
            d.group_id = id.clone();
            let all = ctx.shared.groups.lock(&ctx.shared.store, id.0.as_str());
            match all.get(id.0.as_str()) {
                // A group known only to the store (a simple consumer's, by its offsets or
                // emptied of them and not yet deleted) is Empty, as ListGroups shows it.
                None if in_place(|| ctx.shared.store.offsets().knows_group(id.0.as_str())) => {
                    d.group_state = s(State::Empty.name())
                }
                None => d.group_state = s("Dead"),
                Some(g) => {
                    // Kafka's group summary: the protocol and each member's metadata and
                    // assignment only while Stable; otherwise no protocol and empty bytes.
                    let stable = g.state == State::Stable;
                    d.group_state = s(g.state.name());
                    d.protocol_type = s(g.protocol_type.clone());
                    if stable {
                        d.protocol_data = s(g.protocol.clone());
                    }
                    d.members = g
                        .members
                        .iter()
                        .map(|(mid, m)| {
                            let mut dm = DescribedGroupMember::default();
                            dm.member_id = s(mid.clone());
                            if ctx.version >= 4 {
                                dm.group_instance_id = m.instance_id.clone().map(s);
                            }
                            dm.client_id = s(m.client_id.clone());
                            dm.client_host = s(m.client_host.clone());
                            if stable {
                                dm.member_metadata = m
                                    .protocols
                                    .iter()
                                    .find(|(n, _)| *n == g.protocol)
                                    .map(|(_, b)| b.clone())
                                    .unwrap_or_default();
                                dm.member_assignment = m.assignment.clone();
                            }
                            dm
                        })
                        .collect();
                }
            }
            d
        })
        .collect();
    out
}

pub(crate) fn list(ctx: &Ctx, r: ListGroupsRequest) -> ListGroupsResponse {
    let mut listed: Vec<(String, String, &'static str)> = Vec::new();
    for all in ctx.shared.groups.shards() {
        listed.extend(
            all.iter()
                .map(|(id, g)| (id.clone(), g.protocol_type.clone(), g.state.name())),
        );
    }
    // Groups known only by their committed offsets are Empty.
    for id in in_place(|| ctx.shared.store.offsets().groups()) {
        if !listed.iter().any(|(l, _, _)| *l == id) {
            listed.push((id, String::new(), State::Empty.name()));
        }
    }
    listed.sort();
    let mut out = ListGroupsResponse::default();
    out.groups = listed
        .into_iter()
        .filter(|(_, _, state)| {
            r.states_filter.is_empty() || r.states_filter.iter().any(|f| f.as_str() == *state)
        })
        .map(|(id, ptype, state)| {
            let mut l = ListedGroup::default();
            l.group_id = GroupId(s(id));
            l.protocol_type = s(ptype);
            if ctx.version >= 4 {
                l.group_state = s(state);
            }
            l
        })
        .collect();
    out
}
