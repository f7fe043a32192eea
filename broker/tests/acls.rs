//! Invariant: a broker that authorizes nothing answers the ACL requests as a Kafka broker
//! without an authorizer does: SECURITY_DISABLED (54) with Kafka's message, for the whole
//! DescribeAcls request and for each creation of CreateAcls and each filter of DeleteAcls, in
//! the request's order, at every version served; a DescribeAcls after a CreateAcls lists
//! nothing, and the connection goes on serving other requests.

mod common;

use common::{call, conn, in_process, s};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse, MetadataRequest, MetadataResponse,
};

const SECURITY_DISABLED: i16 = 54;
const TOPIC: i8 = 2;
const LITERAL: i8 = 3;
const READ: i8 = 3;
const ALLOW: i8 = 3;

fn creation(topic: &str, principal: &str) -> AclCreation {
    let mut c = AclCreation::default();
    c.resource_type = TOPIC;
    c.resource_name = s(topic);
    c.resource_pattern_type = LITERAL;
    c.principal = s(principal);
    c.host = s("*");
    c.operation = READ;
    c.permission_type = ALLOW;
    c
}

fn describe(addr: &str, version: i16) -> DescribeAclsResponse {
    let mut r = DescribeAclsRequest::default();
    r.resource_type_filter = 1; // ANY
    r.pattern_type_filter = 1; // ANY
    r.operation = 1; // ANY
    r.permission_type = 1; // ANY
    call(&mut conn(addr), ApiKey::DescribeAcls, version, &r)
}

#[test]
fn every_acl_request_is_answered_security_disabled_and_nothing_is_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_rt, broker) = in_process(dir.path(), &[], eoslog::LogOptions::default());
    let addr = broker.local_addr().to_string();
    for version in 1..=3 {
        let mut create = CreateAclsRequest::default();
        create.creations = vec![creation("a", "User:alice"), creation("b", "User:bob")];
        let resp: CreateAclsResponse = call(&mut conn(&addr), ApiKey::CreateAcls, version, &create);
        let results: Vec<_> = resp
            .results
            .iter()
            .map(|r| (r.error_code, r.error_message.as_ref().map(ToString::to_string)))
            .collect();
        let expected = Some("No Authorizer is configured.".to_owned());
        assert_eq!(
            results,
            vec![
                (SECURITY_DISABLED, expected.clone()),
                (SECURITY_DISABLED, expected.clone())
            ],
            "v{version}"
        );

        let d = describe(&addr, version);
        assert_eq!(d.error_code, SECURITY_DISABLED, "v{version}");
        assert_eq!(
            d.error_message.as_deref(),
            Some("No Authorizer is configured on the broker")
        );
        assert!(d.resources.is_empty(), "no ACL stored: {:?}", d.resources);

        let mut delete = DeleteAclsRequest::default();
        let mut f = DeleteAclsFilter::default();
        f.resource_type_filter = 1;
        f.pattern_type_filter = 1;
        f.operation = 1;
        f.permission_type = 1;
        delete.filters = vec![f.clone(), f.clone(), f];
        let resp: DeleteAclsResponse = call(&mut conn(&addr), ApiKey::DeleteAcls, version, &delete);
        assert_eq!(resp.filter_results.len(), 3);
        for r in &resp.filter_results {
            assert_eq!(r.error_code, SECURITY_DISABLED);
            assert_eq!(r.error_message.as_deref(), expected.as_deref());
            assert!(r.matching_acls.is_empty());
        }
    }
    // The connection and the broker serve on.
    let mut c = conn(&addr);
    let _: DescribeAclsResponse = {
        let mut r = DescribeAclsRequest::default();
        r.resource_type_filter = 1;
        r.pattern_type_filter = 1;
        r.operation = 1;
        r.permission_type = 1;
        call(&mut c, ApiKey::DescribeAcls, 3, &r)
    };
    let m: MetadataResponse = call(&mut c, ApiKey::Metadata, 12, &MetadataRequest::default());
    assert_eq!(m.brokers.len(), 1);
}
