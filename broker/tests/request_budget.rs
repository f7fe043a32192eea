//! Invariant: the bytes of requests read and not yet answered, across every connection,
//! never exceed `queued.max.request.bytes`. While one connection's request holds the whole
//! budget (all of it but its last byte has arrived), another connection's request is not
//! read, so it is not answered; once the first request ends (its client goes away, or it
//! stalls past `connections.max.idle.ms` and is cut off) the budget is back and the waiting
//! request is answered.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use common::{closed, read_frame, BrokerProcess};

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

/// A connection that sends a request as large as the budget but its last byte: it holds
/// all but one byte of the budget.
fn hog(broker: &BrokerProcess) -> std::net::TcpStream {
    let mut a = broker.connect();
    a.write_all(&BUDGET.to_be_bytes()).expect("size");
    let mut body = vec![0u8; BUDGET as usize - 1];
    body[..8].copy_from_slice(&[0, 0, 0, 9, 0, 0, 0, 1]); // a Produce v9 header begins
    a.write_all(&body).expect("all but the last byte");
    std::thread::sleep(Duration::from_millis(500));
    a
}

/// Sends ApiVersions on a new connection and expects no answer for `wait`.
fn unanswered_for(broker: &BrokerProcess, wait: Duration) -> std::net::TcpStream {
    let mut b = broker.connect();
    b.write_all(&api_versions_frame()).expect("request");
    b.set_read_timeout(Some(wait)).expect("timeout");
    let mut byte = [0u8; 1];
    match b.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("answered while another request held the whole budget: {other:?}"),
    }
    b
}

fn answered(b: &mut std::net::TcpStream) {
    b.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let response = read_frame(b).expect("answered once the budget freed");
    assert_eq!(&response[..4], &7i32.to_be_bytes(), "correlation id");
    assert_eq!(&response[4..6], &0i16.to_be_bytes(), "error code NONE");
}

fn bounded(extra: &[&str]) -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().expect("dir");
    let mut configs = vec![
        format!("socket.request.max.bytes={BUDGET}"),
        format!("queued.max.request.bytes={BUDGET}"),
    ];
    configs.extend(extra.iter().map(|s| (*s).to_owned()));
    let refs: Vec<&str> = configs.iter().map(String::as_str).collect();
    let broker = BrokerProcess::start(dir.path(), &refs);
    (dir, broker)
}

#[test]
fn a_full_request_budget_holds_back_other_connections_until_it_frees() {
    let (_dir, broker) = bounded(&[]);
    let a = hog(&broker);
    let mut b = unanswered_for(&broker, Duration::from_millis(1500));
    // A goes away mid-request: its bytes leave the budget and B is answered.
    drop(a);
    answered(&mut b);
}

/// A peer that stalls mid-request is cut off after `connections.max.idle.ms`, as an idle
/// connection is, and its bytes leave the budget: a stalled request cannot hold the broker.
#[test]
fn a_stalled_request_loses_its_budget_after_the_idle_timeout() {
    let (_dir, broker) = bounded(&["connections.max.idle.ms=2000"]);
    let mut a = hog(&broker);
    let mut b = unanswered_for(&broker, Duration::from_millis(500));
    answered(&mut b);
    a.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert!(closed(&mut a), "the stalled connection was closed");
}

/// Unbounded (-1, Kafka's default): the same two connections do not wait on each other.
#[test]
fn without_a_budget_nothing_waits() {
    let dir = tempfile::tempdir().expect("dir");
    let broker = BrokerProcess::start(
        dir.path(),
        &[
            &format!("socket.request.max.bytes={BUDGET}"),
            "queued.max.request.bytes=-1",
        ],
    );
    let _a = hog(&broker);
    let mut b = broker.connect();
    b.write_all(&api_versions_frame()).expect("request");
    answered(&mut b);
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
