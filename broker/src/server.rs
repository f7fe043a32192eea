//! Connections: the size-prefixed frames of Kafka's protocol, one request at a time per
//! connection (Kafka mutes a connection until its response is sent, so responses keep the
//! requests' order), the request header, and the dispatch to the handlers.
//!
//! Bad input never reaches the store: a size field above `socket.request.max.bytes` or
//! below a header's size, an unknown API key, a version outside the served range, or a body
//! that does not decode closes the connection (as Kafka does), with nothing written. A
//! frame's buffer grows with the bytes that actually arrive, so a forged size costs nothing
//! until the data is sent. The sizes of the requests being read or handled stay within
//! `queued.max.request.bytes`: a connection whose next request would pass it waits, its
//! socket unread, until earlier requests are answered. A request whose bytes stop arriving
//! for `connections.max.idle.ms` closes its connection and frees its share.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::versions;
use crate::Shared;

/// The smallest frame: api key, version, correlation id, client id length.
const MIN_FRAME: usize = 10;

/// Why a connection is closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    #[error("connection I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("request size {size} outside 10..={max} bytes")]
    BadSize { size: i64, max: usize },
    #[error("unknown API key {key}")]
    UnknownApi { key: i16 },
    #[error("{api:?} version {version} is not served")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("idle for {0:?}")]
    Idle(Duration),
    #[error("a produce with acks=0 failed (answered by closing the connection, as Kafka does)")]
    UnacknowledgedProduceFailed,
}

/// Serves one connection until the peer closes it, it sends something unparseable, or
/// the broker shuts down.
pub(crate) async fn serve(shared: Arc<Shared>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let mut shutdown = shared.shutdown.subscribe();
    let result = tokio::select! {
        r = connection_loop(&shared, &mut stream, &peer) => r,
        _ = shutdown.wait_for(|&stop| stop) => Ok(()),
    };
    if let Err(e) = result {
        tracing::debug!(target: "eoslog_broker", %peer, error = %e, "connection closed");
    }
    shared.connections.fetch_sub(1, Ordering::Relaxed);
}

async fn connection_loop(
    shared: &Arc<Shared>,
    stream: &mut TcpStream,
    peer: &str,
) -> Result<(), ConnectionError> {
    let max = shared.config.socket_request_max_bytes;
    let idle = Duration::from_millis(shared.config.connections_max_idle_ms);
    loop {
        let size = match tokio::time::timeout(idle, stream.read_i32()).await {
            Err(_) => return Err(ConnectionError::Idle(idle)),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => r?,
        };
        if size < MIN_FRAME as i32 || size as usize > max {
            return Err(ConnectionError::BadSize {
                size: i64::from(size),
                max,
            });
        }
        // The whole request counts against `queued.max.request.bytes` from before its body
        // is read until it is answered, all or nothing (Kafka's memory pool does the same):
        // a request waiting for budget holds none, so waiters never block each other.
        let budget = match &shared.request_bytes {
            Some(sem) => Some(
                sem.clone()
                    .acquire_many_owned(size as u32)
                    .await
                    .map_err(|_| std::io::Error::other("request budget closed"))?,
            ),
            None => None,
        };
        let frame = read_frame(stream, size as usize, idle).await?;
        let Some(response) = handle_frame(shared, frame, peer).await? else {
            continue;
        };
        drop(budget);
        stream.write_all(&response).await?;
    }
}

/// Reads `size` bytes, growing the buffer as they arrive (at most 64 KiB ahead). A peer
/// that sends nothing for `idle` mid-request is cut off, like an idle connection, so a
/// stalled request cannot keep its share of `queued.max.request.bytes` for ever.
async fn read_frame(stream: &mut TcpStream, size: usize, idle: Duration) -> Result<Bytes, ConnectionError> {
    let mut buf = BytesMut::with_capacity(size.min(64 * 1024));
    while buf.len() < size {
        let want = (size - buf.len()).min(64 * 1024);
        buf.reserve(want);
        let n = match tokio::time::timeout(idle, (&mut *stream).take(want as u64).read_buf(&mut buf)).await {
            Err(_) => return Err(ConnectionError::Idle(idle)),
            Ok(r) => r?,
        };
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
    Ok(buf.freeze())
}

/// Decodes one request and answers it: `None` when no response is due (Produce with
/// `acks=0`).
async fn handle_frame(
    shared: &Arc<Shared>,
    mut frame: Bytes,
    peer: &str,
) -> Result<Option<Bytes>, ConnectionError> {
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(key).map_err(|()| ConnectionError::UnknownApi { key })?;
    if api == ApiKey::ApiVersions && version > 4 {
        // The body of a newer ApiVersions may not parse: answer at version 0 from the
        // header's first fields (the correlation id follows the key and version).
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let body = ResponseKind::ApiVersions(versions::api_versions_downgrade());
        return encode(correlation_id, api, 0, &body).map(Some);
    }
    if !versions::supported(api, version) {
        return Err(ConnectionError::UnsupportedVersion { api, version });
    }
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version)).map_err(|e| {
        ConnectionError::Malformed {
            what: "request header",
            reason: e.to_string(),
        }
    })?;
    let request = RequestKind::decode(api, &mut frame, version).map_err(|e| ConnectionError::Malformed {
        what: "request body",
        reason: format!("{api:?} v{version}: {e}"),
    })?;
    if frame.has_remaining() {
        tracing::debug!(target: "eoslog_broker", ?api, version, trailing = frame.remaining(), "request with trailing bytes");
    }
    tracing::debug!(target: "eoslog_broker", ?api, version, correlation_id = header.correlation_id, client = ?header.client_id, %peer, "request");
    let ctx = crate::handlers::Ctx {
        shared: shared.clone(),
        version,
        client_id: header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        client_host: peer.to_owned(),
    };
    let unacknowledged = matches!(&request, RequestKind::Produce(r) if r.acks == 0);
    let started = std::time::Instant::now();
    let response = crate::handlers::dispatch(ctx, request).await;
    tracing::debug!(target: "eoslog_broker", ?api, correlation_id = header.correlation_id, micros = started.elapsed().as_micros() as u64, "handled");
    let Some(response) = response else {
        return Ok(None);
    };
    if unacknowledged {
        // The client expects no answer: closing tells it something failed, and it refreshes
        // its metadata (Kafka's `KafkaApis.handleProduceRequest`).
        return Err(ConnectionError::UnacknowledgedProduceFailed);
    }
    encode(header.correlation_id, api, version, &response).map(Some)
}

fn encode(
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    body: &ResponseKind,
) -> Result<Bytes, ConnectionError> {
    let mut out = BytesMut::with_capacity(256);
    out.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(&mut out, api.response_header_version(version))
        .and_then(|()| body.encode(&mut out, version))
        .map_err(|e| ConnectionError::Malformed {
            what: "response",
            reason: format!("{api:?} v{version}: {e}"),
        })?;
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out.freeze())
}
