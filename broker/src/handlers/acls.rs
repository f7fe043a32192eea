//! DescribeAcls, CreateAcls and DeleteAcls (`kafka-acls`, the admin clients' ACL calls).
//!
//! This broker authorizes nothing: every client may do everything, as a Kafka broker
//! without `authorizer.class.name`. Kafka answers the ACL requests of such a broker with
//! SECURITY_DISABLED (54), the whole request for DescribeAcls and each creation or filter
//! for the other two, and that is what an operator's tools expect to see here: an ACL is
//! never accepted and then silently not enforced.

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsResponse,
};
use kafka_protocol::ResponseError;

use super::s;

/// Kafka's `SecurityDisabledException` message for CreateAcls and DeleteAcls.
const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// DescribeAcls: SECURITY_DISABLED for the request, with Kafka's message.
pub(crate) fn describe_acls() -> DescribeAclsResponse {
    let mut out = DescribeAclsResponse::default();
    out.error_code = ResponseError::SecurityDisabled.code();
    out.error_message = Some(s("No Authorizer is configured on the broker"));
    out
}

/// CreateAcls: SECURITY_DISABLED for every creation asked, in the request's order; no ACL
/// is stored.
pub(crate) fn create_acls(r: &CreateAclsRequest) -> CreateAclsResponse {
    let mut out = CreateAclsResponse::default();
    out.results = r
        .creations
        .iter()
        .map(|_| {
            let mut res = AclCreationResult::default();
            res.error_code = ResponseError::SecurityDisabled.code();
            res.error_message = Some(s(NO_AUTHORIZER));
            res
        })
        .collect();
    out
}

/// DeleteAcls: SECURITY_DISABLED for every filter asked, in the request's order, each
/// matching nothing.
pub(crate) fn delete_acls(r: &DeleteAclsRequest) -> DeleteAclsResponse {
    let mut out = DeleteAclsResponse::default();
    out.filter_results = r
        .filters
        .iter()
        .map(|_| {
            let mut res = DeleteAclsFilterResult::default();
            res.error_code = ResponseError::SecurityDisabled.code();
            res.error_message = Some(s(NO_AUTHORIZER));
            res
        })
        .collect();
    out
}
