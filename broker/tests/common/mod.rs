//! A broker process on a free loopback port, and raw protocol requests to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// A running `eoslog-broker`.
pub struct BrokerProcess {
    pub child: Child,
    pub addr: String,
}

impl BrokerProcess {
    pub fn start(dir: &Path, configs: &[&str]) -> BrokerProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_eoslog-broker"));
        cmd.arg("--data-dir").arg(dir).arg("--listen").arg("127.0.0.1:0");
        for c in configs {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn broker");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        BrokerProcess { child, addr }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .expect("kill");
        self.child.wait().expect("wait")
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `body` as request `api` at `version` and decodes the response as `R`.
pub fn call<Q: Encodable, R: Decodable>(stream: &mut TcpStream, api: ApiKey, version: i16, body: &Q) -> R {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    let mut h = RequestHeader::default();
    h.request_api_key = api as i16;
    h.request_api_version = version;
    h.correlation_id = 42;
    h.client_id = Some(StrBytes::from_static_str("bad-input-test"));
    h.encode(&mut buf, api.request_header_version(version))
        .expect("header");
    body.encode(&mut buf, version).expect("body");
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    stream.write_all(&buf).expect("write");
    let mut frame = read_frame(stream).expect("response");
    let rh =
        ResponseHeader::decode(&mut frame, api.response_header_version(version)).expect("response header");
    assert_eq!(rh.correlation_id, 42);
    R::decode(&mut frame, version).expect("response body")
}

/// One response frame, or `None` when the broker closed the connection.
pub fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    match stream.read_exact(&mut size) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            return None
        }
        Err(e) => panic!("read: {e}"),
    }
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).expect("frame body");
    Some(Bytes::from(body))
}

/// Whether the broker closed `stream` (reads end) within the read timeout.
pub fn closed(stream: &mut TcpStream) -> bool {
    read_frame(stream).is_none()
}
