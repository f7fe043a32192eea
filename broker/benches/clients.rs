//! What the protocol layer costs, measured with a real client (librdkafka, through the
//! `rdkafka` crate) against baselines in the same run:
//!
//! * `produce/broker_idempotent` — 1 KiB records, `acks=all`, idempotent, through the broker;
//!   `produce/in_process` — the very batches librdkafka sent (read back from the broker's
//!   log) appended with `Store::produce` in-process: the ratio is the protocol layer's cost.
//!   After `broker_idempotent` the bench prints the CPU time its threads used per record,
//!   the broker's (tokio workers and blocking pool) and librdkafka's apart: on two cores
//!   the client's own work bounds that row.
//! * `produce/broker_raw_client` — the same batches as `in_process`, sent by a minimal
//!   client in the bench thread: one connection, InitProducerId, then Produce v9 requests
//!   (`acks=-1`, five in flight as librdkafka keeps them), each batch restamped with the
//!   producer id and the next sequence (and its CRC recomputed). It costs the client next to
//!   nothing, so against `in_process` it is the protocol layer's cost alone.
//! * `produce/broker_transactional` — the same producer transactional, committing every
//!   100 ms, against `broker_idempotent`. After it the bench prints how long its commits
//!   took (draining the acknowledgements, then `commit_transaction`). Both librdkafka rows drain their acknowledgements
//!   themselves before the binding's flush (see [`drain`]).
//! * After the produce group, the same two ratios from paired rounds: each round times
//!   in-process, idempotent and transactional back to back, in rotating order, and the bench
//!   prints the ratios of the summed times and their per-round medians (rows measured in
//!   separate stretches of a run drift apart on a noisy machine).
//! * `fetch/read_committed` against `fetch/read_uncommitted` — a librdkafka consumer reading
//!   the same 20,000 committed 1 KiB records (with aborted transactions among them).
//!
//! `cargo bench -p eoslog-broker --bench clients`. `EOSLOG_BENCH_DIR` puts the data
//! elsewhere than `/dev/shm`; `EOSLOG_BENCH_BROKER_CONFIG="key=value ..."` adds broker configs.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eoslog::{BatchIter, Isolation, Offset, ProduceContext, Store, StoreConfig};
use eoslog_broker::{Broker, BrokerConfig};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, TopicPartitionList};

const RECORD: usize = 1024;
/// Records per iteration: enough that the flush that ends each measured call (linger,
/// the last round trip) is a small part of it.
const PER_ITER: u64 = 100_000;
/// `log.segment.bytes` of the broker and of the in-process store.
const SEGMENT_BYTES: &str = "67108864";

struct Running {
    rt: tokio::runtime::Runtime,
    broker: Option<Broker>,
    addr: String,
    _dir: tempfile::TempDir,
}

/// Where the data goes: `EOSLOG_BENCH_DIR`, else `/dev/shm` (a tmpfs: these rows compare
/// CPU costs, and gigabytes of dirty pages on a disk make the writeback of one row slow the
/// next), else the system's temporary directory.
fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("EOSLOG_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| Some(std::path::PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir);
    tempfile::tempdir_in(base).expect("tempdir")
}

fn start_broker() -> Running {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("EOSLOG_LOG"))
        .with_writer(std::io::stderr)
        .try_init();
    let dir = bench_dir();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("eoslog-broker")
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = BrokerConfig::default();
    config
        .set("group.initial.rebalance.delay.ms", "0")
        .expect("config");
    config
        .set("transaction.max.timeout.ms", "900000")
        .expect("config");
    // Bounded data: old segments go at each maintenance.
    config.set("log.segment.bytes", SEGMENT_BYTES).expect("config");
    config.set("log.retention.bytes", "268435456").expect("config");
    config
        .set("log.retention.check.interval.ms", "1000")
        .expect("config");
    // `EOSLOG_BENCH_BROKER_CONFIG="key=value key=value"`: more broker configs, for example
    // `eoslog.internal.durability=buffered` with the data on a disk.
    for pair in std::env::var("EOSLOG_BENCH_BROKER_CONFIG")
        .unwrap_or_default()
        .split_whitespace()
    {
        let (key, value) = pair
            .split_once('=')
            .expect("EOSLOG_BENCH_BROKER_CONFIG: key=value");
        config.set(key, value).expect("EOSLOG_BENCH_BROKER_CONFIG");
    }
    let broker = rt
        .block_on(Broker::start(
            dir.path(),
            "127.0.0.1:0".parse().expect("addr"),
            config,
        ))
        .expect("broker");
    let addr = broker.local_addr().to_string();
    Running {
        rt,
        broker: Some(broker),
        addr,
        _dir: dir,
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(b) = self.broker.take() {
            let _ = self.rt.block_on(b.shutdown());
        }
    }
}

fn producer(addr: &str, transactional_id: Option<&str>) -> BaseProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000");
    if let Some(id) = transactional_id {
        c.set("transactional.id", id);
    }
    let p: BaseProducer = c.create().expect("producer");
    if transactional_id.is_some() {
        p.init_transactions(Duration::from_secs(30)).expect("init");
        p.begin_transaction().expect("begin");
    }
    p
}

/// Produces `n` records and waits for every acknowledgement; with `commit_every`, commits
/// the transaction whenever that much time passed (and at the end).
fn produce(p: &BaseProducer, topic: &str, n: u64, commit_every: Option<Duration>) -> Duration {
    produce_counting(p, topic, n, commit_every, &Cell::new((Duration::ZERO, 0)))
}

/// [`produce`], adding the time spent in `commit_transaction` and the commits to `commits`.
fn produce_counting(
    p: &BaseProducer,
    topic: &str,
    n: u64,
    commit_every: Option<Duration>,
    commits: &Cell<(Duration, u32)>,
) -> Duration {
    let commit = || {
        let t = Instant::now();
        drain(p);
        p.commit_transaction(Duration::from_secs(30)).expect("commit");
        let (d, c) = commits.get();
        commits.set((d + t.elapsed(), c + 1));
        p.begin_transaction().expect("begin");
    };
    let value = vec![b'x'; RECORD];
    let start = Instant::now();
    let mut last_commit = start;
    for _ in 0..n {
        loop {
            match p.send(BaseRecord::<(), [u8]>::to(topic).partition(0).payload(&value)) {
                Ok(()) => break,
                Err((e, _)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "send: {e}"
                    );
                    p.poll(Duration::from_millis(1));
                }
            }
        }
        p.poll(Duration::ZERO);
        if let Some(every) = commit_every {
            if last_commit.elapsed() >= every {
                commit();
                last_commit = Instant::now();
            }
        }
    }
    drain(p);
    if commit_every.is_some() {
        commit();
    }
    start.elapsed()
}

/// Waits until every message is acknowledged, serving the delivery reports as they come.
///
/// rust-rdkafka's `flush`, and so its `commit_transaction`, which flushes first, serves
/// them with `BaseProducer::poll(100 ms)`, and that returns only at its deadline (spinning
/// through its last millisecond): each flush would end on a 100 ms step, however soon the
/// last acknowledgement came. That is the binding's cost, not librdkafka's (whose own flush
/// wakes on the last one) nor the broker's; draining first, with a non-blocking poll every
/// 100 µs, leaves the binding's flush nothing to wait for.
fn drain(p: &BaseProducer) {
    // A flush that times out at once still wakes librdkafka's threads to send what lingers.
    let _ = p.flush(Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        p.poll(Duration::ZERO);
        if p.in_flight_count() == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "messages unacknowledged after 60 s");
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// The batches stored in a partition, as appended.
fn stored_batches(store: &Store, topic: &str) -> Vec<Vec<u8>> {
    let log = store.partition(topic, 0).expect("partition");
    let mut out = Vec::new();
    let mut from = log.log_start_offset();
    loop {
        let res = log.read(from, 8 << 20, Isolation::ReadUncommitted).expect("read");
        let bytes = res.bytes().expect("bytes");
        if bytes.is_empty() {
            return out;
        }
        for item in BatchIter::new(&bytes) {
            let (_, batch) = item.expect("batch");
            from = Offset(batch.last_offset() + 1);
            // As the client sent it: base offset 0 (the log assigns it; it is outside the CRC).
            let mut sent = batch.as_bytes().to_vec();
            sent[..8].fill(0);
            out.push(sent);
        }
    }
}

fn bench_produce(c: &mut Criterion) {
    let running = start_broker();
    let mut g = c.benchmark_group("produce");
    g.throughput(Throughput::Bytes(PER_ITER * RECORD as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(10));

    // The batches librdkafka sends for 200,000 records, captured once for the replays.
    let idem = producer(&running.addr, None);
    produce(&idem, "bench-capture", 200_000, None);
    let batches = Arc::new(stored_batches(
        running.broker.as_ref().expect("broker").store(),
        "bench-capture",
    ));
    let records: Vec<u64> = batches
        .iter()
        .map(|b| {
            BatchIter::new(b)
                .next()
                .map_or(0, |r| r.expect("batch").1.records_count() as u64)
        })
        .collect();
    assert_eq!(records.iter().sum::<u64>(), 200_000);
    eprintln!(
        "replays cycle through {} batches of 200000 records",
        batches.len()
    );

    let before = thread_cpu();
    let produced_before = idem_records(&running);
    g.bench_function("broker_idempotent", |b| {
        b.iter_custom(|n| produce(&idem, "bench-idem", n * PER_ITER, None))
    });
    let after = thread_cpu();
    let produced = (idem_records(&running) - produced_before).max(1) as f64;
    eprintln!(
        "broker_idempotent CPU per record: broker threads {:.3} µs, librdkafka threads {:.3} µs, other {:.3} µs ({} records)",
        (after.0 - before.0) * 1e6 / produced,
        (after.1 - before.1) * 1e6 / produced,
        (after.2 - before.2) * 1e6 / produced,
        produced
    );
    let idem_log = running
        .broker
        .as_ref()
        .expect("broker")
        .store()
        .partition("bench-idem", 0);
    if let Ok(log) = idem_log {
        eprintln!(
            "bench-idem: log start {} end {}",
            log.log_start_offset(),
            log.log_end_offset()
        );
    }

    running
        .broker
        .as_ref()
        .expect("broker")
        .store()
        .create_topic("bench-raw", 1, &[])
        .expect("topic");
    let mut raw = RawProducer::connect(&running.addr);
    let raw_topic = TopicName(StrBytes::from_static_str("bench-raw"));
    let before = thread_cpu();
    let mut raw_records = 0u64;
    g.bench_function("broker_raw_client", |b| {
        b.iter_custom(|n| {
            let n = n * PER_ITER;
            let start = Instant::now();
            let mut done = 0u64;
            while done < n {
                for (batch, &count) in batches.iter().zip(&records) {
                    raw.produce(&raw_topic, batch, count as i32);
                    done += count;
                    if done >= n {
                        break;
                    }
                }
            }
            raw.flush();
            raw_records += done;
            start.elapsed()
        })
    });
    let after = thread_cpu();
    eprintln!(
        "broker_raw_client CPU per record: broker threads {:.3} µs, the client (bench thread and others) {:.3} µs ({} records)",
        (after.0 - before.0) * 1e6 / raw_records.max(1) as f64,
        (after.2 - before.2) * 1e6 / raw_records.max(1) as f64,
        raw_records
    );

    let txn = producer(&running.addr, Some("bench-txn"));
    let commits = Cell::new((Duration::ZERO, 0u32));
    let (mut txn_time, mut txn_records) = (Duration::ZERO, 0u64);
    g.bench_function("broker_transactional", |b| {
        b.iter_custom(|n| {
            let took = produce_counting(
                &txn,
                "bench-txn",
                n * PER_ITER,
                Some(Duration::from_millis(100)),
                &commits,
            );
            txn_time += took;
            txn_records += n * PER_ITER;
            took
        })
    });
    let (in_commit, count) = commits.get();
    eprintln!(
        "broker_transactional: {count} commits (drain, then commit_transaction) took {:.1} ms each ({:.1}% of the time producing {txn_records} records)",
        in_commit.as_secs_f64() * 1e3 / f64::from(count.max(1)),
        in_commit.as_secs_f64() * 100.0 / txn_time.as_secs_f64().max(1e-9),
    );

    g.bench_function("in_process", |b| {
        b.iter_custom(|n| in_process(&batches, &records, n * PER_ITER))
    });

    g.finish();
    paired(&idem, &txn, &batches, &records);
    drop(idem);
    drop(txn);
}

/// Appends `n` records of the captured batches with `Store::produce` in fresh stores; the
/// time of the appends alone.
fn in_process(batches: &[Vec<u8>], records: &[u64], n: u64) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut done = 0u64;
    while done < n {
        let dir = bench_dir();
        // The broker's segment size (its retention is left out: each store here
        // holds one pass over the batches and is deleted untimed).
        let mut config = StoreConfig::default();
        config.set("log.segment.bytes", SEGMENT_BYTES).expect("config");
        let store = Store::open(dir.path(), config).expect("store");
        store.create_topic("bench", 1, &[]).expect("topic");
        // The partition's files are created at its first use: not part of an append.
        store.partition("bench", 0).expect("partition");
        let start = Instant::now();
        for (batch, count) in batches.iter().zip(records) {
            let outcome = store
                .produce("bench", 0, batch, &ProduceContext::default())
                .expect("produce");
            assert!(outcome.info().is_some(), "{outcome:?}");
            done += count;
            if done >= n {
                break;
            }
        }
        elapsed += start.elapsed();
        store.close().expect("close");
    }
    elapsed
}

/// The two produce ratios again, from rounds that each time all three of in-process,
/// idempotent and transactional (commit every 100 ms) over `PER_ITER` records, in an order
/// that rotates round by round, so that the machine's drift falls on all three alike
/// (criterion times each row in its own stretch of the run). Prints each ratio of the
/// summed times and its median over the rounds. `EOSLOG_BENCH_PAIRED_ROUNDS` (default 15).
fn paired(idem: &BaseProducer, txn: &BaseProducer, batches: &[Vec<u8>], records: &[u64]) {
    let rounds: usize = std::env::var("EOSLOG_BENCH_PAIRED_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15)
        .max(1);
    let mut times = vec![[Duration::ZERO; 3]; rounds];
    for (round, t) in times.iter_mut().enumerate() {
        for k in 0..3 {
            let row = (round + k) % 3;
            t[row] = match row {
                0 => in_process(batches, records, PER_ITER),
                1 => produce(idem, "bench-idem", PER_ITER, None),
                _ => produce(txn, "bench-txn", PER_ITER, Some(Duration::from_millis(100))),
            };
        }
    }
    let ratio = |num: usize, den: usize| {
        let sum = |i: usize| times.iter().map(|t| t[i].as_secs_f64()).sum::<f64>();
        let mut each: Vec<f64> = times
            .iter()
            .map(|t| t[den].as_secs_f64() / t[num].as_secs_f64())
            .collect();
        each.sort_by(f64::total_cmp);
        (
            sum(den) / sum(num),
            each[each.len() / 2],
            each[0],
            each[each.len() - 1],
        )
    };
    let mean_ms = |i: usize| times.iter().map(|t| t[i].as_secs_f64()).sum::<f64>() * 1e3 / rounds as f64;
    eprintln!(
        "paired, {rounds} rounds of {PER_ITER} records: in_process {:.1} ms, broker_idempotent {:.1} ms, broker_transactional {:.1} ms",
        mean_ms(0),
        mean_ms(1),
        mean_ms(2)
    );
    for (name, num, den) in [
        ("broker_idempotent / in_process", 1, 0),
        ("broker_transactional / broker_idempotent", 2, 1),
    ] {
        let (sum, median, low, high) = ratio(num, den);
        eprintln!(
            "paired throughput {name}: {sum:.3} of summed times; per round median {median:.3} (range {low:.3} to {high:.3})"
        );
    }
}

/// A client that costs next to nothing: Produce requests over one blocking connection.
struct RawProducer {
    stream: TcpStream,
    producer_id: i64,
    epoch: i16,
    sequence: i32,
    correlation: i32,
    /// Records of each request in flight, oldest first.
    in_flight: VecDeque<i32>,
    frame: BytesMut,
}

/// Requests a raw producer keeps in flight (librdkafka's `max.in.flight` with idempotence).
const RAW_IN_FLIGHT: usize = 5;
const PRODUCE_VERSION: i16 = 9;

impl RawProducer {
    fn connect(addr: &str) -> RawProducer {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut p = RawProducer {
            stream,
            producer_id: -1,
            epoch: -1,
            sequence: 0,
            correlation: 0,
            in_flight: VecDeque::new(),
            frame: BytesMut::new(),
        };
        let mut init = InitProducerIdRequest::default();
        init.transactional_id = None;
        init.transaction_timeout_ms = 60_000;
        init.producer_id = kafka_protocol::messages::ProducerId(-1);
        init.producer_epoch = -1;
        p.send(ApiKey::InitProducerId, 4, &init);
        let r: InitProducerIdResponse = p.receive(ApiKey::InitProducerId, 4);
        assert_eq!(r.error_code, 0, "InitProducerId: {r:?}");
        p.producer_id = r.producer_id.0;
        p.epoch = r.producer_epoch;
        p
    }

    fn send<Q: Encodable>(&mut self, api: ApiKey, version: i16, body: &Q) {
        self.correlation += 1;
        let mut h = RequestHeader::default();
        h.request_api_key = api as i16;
        h.request_api_version = version;
        h.correlation_id = self.correlation;
        h.client_id = Some(StrBytes::from_static_str("bench-raw"));
        self.frame.clear();
        self.frame.put_i32(0);
        h.encode(&mut self.frame, api.request_header_version(version))
            .expect("header");
        body.encode(&mut self.frame, version).expect("body");
        let len = (self.frame.len() - 4) as i32;
        self.frame[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&self.frame).expect("write");
    }

    fn receive<R: Decodable>(&mut self, api: ApiKey, version: i16) -> R {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).expect("response size");
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).expect("response");
        let mut frame = Bytes::from(body);
        ResponseHeader::decode(&mut frame, api.response_header_version(version)).expect("header");
        R::decode(&mut frame, version).expect("response body")
    }

    /// Sends `batch` (as a client built it) stamped with this producer and its next sequence.
    fn produce(&mut self, topic: &TopicName, batch: &[u8], records: i32) {
        if self.in_flight.len() == RAW_IN_FLIGHT {
            self.complete_one();
        }
        let mut b = batch.to_vec();
        b[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        b[51..53].copy_from_slice(&self.epoch.to_be_bytes());
        b[53..57].copy_from_slice(&self.sequence.to_be_bytes());
        let crc = eoslog::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        self.sequence = self.sequence.wrapping_add(records);
        let mut part = PartitionProduceData::default();
        part.index = 0;
        part.records = Some(Bytes::from(b));
        let mut t = TopicProduceData::default();
        t.name = topic.clone();
        t.partition_data = vec![part];
        let mut req = ProduceRequest::default();
        req.transactional_id = None;
        req.acks = -1;
        req.timeout_ms = 30_000;
        req.topic_data = vec![t];
        self.send(ApiKey::Produce, PRODUCE_VERSION, &req);
        self.in_flight.push_back(records);
    }

    /// Waits for the oldest request's answer, which must be a success.
    fn complete_one(&mut self) {
        let r: ProduceResponse = self.receive(ApiKey::Produce, PRODUCE_VERSION);
        let code = r.responses[0].partition_responses[0].error_code;
        assert_eq!(code, 0, "produce answered error {code}");
        self.in_flight.pop_front();
    }

    fn flush(&mut self) {
        while !self.in_flight.is_empty() {
            self.complete_one();
        }
    }
}

/// Records appended to `bench-idem` so far (its end offset).
fn idem_records(running: &Running) -> i64 {
    running
        .broker
        .as_ref()
        .and_then(|b| b.store().partition("bench-idem", 0).ok())
        .map_or(0, |log| log.log_end_offset().0)
}

/// CPU seconds this process's threads used, by who runs them: the broker (its runtime's
/// `eoslog-broker` workers and blocking threads), librdkafka (`rdk:` threads), the rest
/// (the bench's thread, which runs librdkafka's produce calls).
fn thread_cpu() -> (f64, f64, f64) {
    let tick = 100.0; // USER_HZ on Linux
    let mut out = (0.0, 0.0, 0.0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        let secs = ticks / tick;
        if comm.starts_with("eoslog-broker") {
            out.0 += secs;
        } else if comm.starts_with("rdk:") {
            out.1 += secs;
        } else {
            out.2 += secs;
        }
    }
    out
}

fn bench_fetch(c: &mut Criterion) {
    let running = start_broker();
    const N: u64 = 20_000;
    // 20,000 committed records in transactions of 1,000, each followed by an aborted one of
    // 100: read_committed skips the aborted ones with the aborted-transaction list.
    let p = producer(&running.addr, Some("bench-fill"));
    for _ in 0..N / 1000 {
        produce(&p, "bench-fetch", 1000, None);
        p.commit_transaction(Duration::from_secs(30)).expect("commit");
        p.begin_transaction().expect("begin");
        produce(&p, "bench-fetch", 100, None);
        p.abort_transaction(Duration::from_secs(30)).expect("abort");
        p.begin_transaction().expect("begin");
    }
    drop(p);

    let mut g = c.benchmark_group("fetch");
    g.throughput(Throughput::Bytes(N * RECORD as u64));
    g.sample_size(10);
    for (name, isolation, expect) in [
        ("read_uncommitted", "read_uncommitted", N + N / 10),
        ("read_committed", "read_committed", N),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let consumer: BaseConsumer = ClientConfig::new()
                        .set("bootstrap.servers", &running.addr)
                        .set("group.id", "bench")
                        .set("enable.auto.commit", "false")
                        .set("isolation.level", isolation)
                        .create()
                        .expect("consumer");
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition_offset("bench-fetch", 0, rdkafka::Offset::Beginning)
                        .expect("tpl");
                    consumer.assign(&tpl).expect("assign");
                    // From the first record on: librdkafka spends ~500 ms starting a
                    // partition (its offset query timer), the same for both isolations.
                    let mut start = None;
                    let mut got = 0u64;
                    while got < expect {
                        if let Some(m) = consumer.poll(Duration::from_secs(5)) {
                            let m = m.expect("message");
                            assert_eq!(m.payload().map(<[u8]>::len), Some(RECORD));
                            start.get_or_insert_with(Instant::now);
                            got += 1;
                        }
                    }
                    elapsed += start.map_or(Duration::ZERO, |s| s.elapsed());
                }
                elapsed
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_produce, bench_fetch);
criterion_main!(benches);
