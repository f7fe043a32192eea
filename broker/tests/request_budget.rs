//! Invariant: the bytes of requests read and not yet answered, across every connection,
//! never exceed `queued.max.request.bytes`. While one connection's request holds the whole
//! budget (its body still arriving), another connection's request is not read, so it is not
//! answered; once the first request ends (here its client goes away mid-request) the budget
//! is back and the waiting request is answered.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use common::{read_frame, BrokerProcess};

const BUDGET: i32 = 1 << 20;

/// An ApiVersions v0 request (header v1: key, version, correlation id, empty client id).
fn api_versions_frame() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&7i32.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

#[test]
fn a_full_request_budget_holds_back_other_connections_until_it_frees() {
    let dir = tempfile::tempdir().expect("dir");
    let broker = BrokerProcess::start(
        dir.path(),
        &[
            &format!("socket.request.max.bytes={BUDGET}"),
            &format!("queued.max.request.bytes={BUDGET}"),
        ],
    );
    // A: a request as large as the whole budget, of which only the size and a few bytes come.
    let mut a = broker.connect();
    a.write_all(&BUDGET.to_be_bytes()).expect("size");
    a.write_all(&[0, 0, 0, 9, 0, 0, 0, 1])
        .expect("start of a Produce header");
    std::thread::sleep(Duration::from_millis(300));

    // B: a whole ApiVersions request, which waits for budget.
    let mut b = broker.connect();
    b.write_all(&api_versions_frame()).expect("request");
    b.set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    match b.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("B was answered while A's request held the whole budget: {other:?}"),
    }

    // A goes away mid-request: its bytes leave the budget and B is answered.
    drop(a);
    b.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let response = read_frame(&mut b).expect("B answered once the budget freed");
    assert_eq!(&response[..4], &7i32.to_be_bytes(), "correlation id");
    assert_eq!(&response[4..6], &0i16.to_be_bytes(), "error code NONE");

    // Unbounded (-1, Kafka's default): the same two connections do not wait on each other.
    drop(b);
    drop(broker);
    let dir = tempfile::tempdir().expect("dir");
    let broker = BrokerProcess::start(
        dir.path(),
        &[
            &format!("socket.request.max.bytes={BUDGET}"),
            "queued.max.request.bytes=-1",
        ],
    );
    let mut a = broker.connect();
    a.write_all(&BUDGET.to_be_bytes()).expect("size");
    let mut b = broker.connect();
    b.write_all(&api_versions_frame()).expect("request");
    assert!(read_frame(&mut b).is_some(), "answered at once without a bound");
}

#[test]
fn a_budget_below_the_largest_request_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eoslog-broker"))
        .args(["--data-dir"])
        .arg(dir.path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--config",
            "socket.request.max.bytes=2048",
            "--config",
            "queued.max.request.bytes=1024",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("queued.max.request.bytes"), "{err}");
}
