//! The broker's configuration: Kafka's broker config names. Keys the store understands
//! (`num.partitions`, `log.segment.bytes`, `transaction.max.timeout.ms`, ...) go to
//! [`eoslog::StoreConfig::set`]; the broker's own (groups, sockets) are kept here. An unknown
//! key is an error, as a Kafka operator expects from a typo.

use eoslog::{ConfigError, StoreConfig};

/// Everything the broker is configured with.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The store's configuration (topic defaults, internal topics, the coordinator).
    pub store: StoreConfig,
    /// `node.id`: the broker id it reports in Metadata and FindCoordinator.
    pub node_id: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first join of an empty group waits
    /// for more members (Kafka's default 3000).
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms` (Kafka's default 6000).
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (Kafka's default 1800000).
    pub group_max_session_timeout_ms: i32,
    /// `socket.request.max.bytes`: the largest request frame accepted (Kafka's default
    /// 100 MiB); a larger size field closes the connection before anything is read.
    pub socket_request_max_bytes: usize,
    /// `queued.max.request.bytes`: the sizes of the requests being read or handled, across
    /// every connection; a connection whose next request would pass it waits before reading
    /// the request (Kafka's memory pool stops reading from sockets the same way). `None` (-1): no bound,
    /// Kafka's default. eoslog-broker's default is 512 MiB, so that ten thousand
    /// connections each sending a request of `socket.request.max.bytes` cannot take the
    /// memory of a terabyte. At least `socket.request.max.bytes` when set.
    pub queued_max_request_bytes: Option<usize>,
    /// `max.connections`: connections beyond it are closed at accept.
    pub max_connections: usize,
    /// `connections.max.idle.ms`: an idle connection is closed after it (Kafka's default
    /// 600000).
    pub connections_max_idle_ms: u64,
    /// `eoslog.maintenance.interval.ms`: how often the store's maintenance runs (flush,
    /// retention, transaction timeouts, marker retries). Defaults to
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` when that is set,
    /// else 1000.
    pub maintenance_interval_ms: u64,
    /// `eoslog.accept.replication.factor`: create topics asked with a replication factor
    /// above 1 (with one replica, the only one there is) instead of answering
    /// `INVALID_REPLICATION_FACTOR` as a one-node Kafka does. For test suites written for a
    /// three-broker cluster (librdkafka's). Default false.
    pub accept_replication_factor: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        // Kafka checks retention every 5 minutes, not at every maintenance run.
        let mut store = StoreConfig::default();
        store.retention_check_interval_ms = 300_000;
        // Kafka's `log.cleaner.threads` default: the broker cleans on a thread of its own,
        // so a long clean never holds up maintenance (transaction timeouts).
        store.cleaner_threads = 1;
        // Kafka flushes a rolled segment from a background thread: a roll fsyncs nothing and
        // maintenance (every `eoslog.maintenance.interval.ms`) makes rolled segments durable,
        // so a produce never waits behind the cleaner's or another partition's writes.
        store.log_defaults.roll_fsync = eoslog::RollFsync::Maintenance;
        BrokerConfig {
            store,
            node_id: 0,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            socket_request_max_bytes: 100 * 1024 * 1024,
            queued_max_request_bytes: Some(512 * 1024 * 1024),
            max_connections: 100_000,
            connections_max_idle_ms: 600_000,
            maintenance_interval_ms: 1000,
            accept_replication_factor: false,
        }
    }
}

impl BrokerConfig {
    /// Sets one key by its Kafka broker name.
    ///
    /// # Errors
    /// An unknown key, or a value that does not parse or is out of range.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let bad = |reason| ConfigError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        };
        let int = |min: i64, max: i64| -> Result<i64, ConfigError> {
            let v = value.trim().parse::<i64>().map_err(|_| bad("not an integer"))?;
            if v < min {
                return Err(bad("below the minimum"));
            }
            if v > max {
                return Err(bad("above the maximum"));
            }
            Ok(v)
        };
        let i32_max = i64::from(i32::MAX);
        match key {
            "node.id" | "broker.id" => self.node_id = int(0, i32_max)? as i32,
            "group.initial.rebalance.delay.ms" => {
                self.group_initial_rebalance_delay_ms = int(0, i32_max)? as u64
            }
            "group.min.session.timeout.ms" => self.group_min_session_timeout_ms = int(1, i32_max)? as i32,
            "group.max.session.timeout.ms" => self.group_max_session_timeout_ms = int(1, i32_max)? as i32,
            "socket.request.max.bytes" => self.socket_request_max_bytes = int(1024, i32_max)? as usize,
            "queued.max.request.bytes" => {
                self.queued_max_request_bytes = match int(-1, i64::from(u32::MAX))? {
                    v if v <= 0 => None,
                    v => Some(v as usize),
                }
            }
            "max.connections" => self.max_connections = int(1, i32_max)? as usize,
            "connections.max.idle.ms" => self.connections_max_idle_ms = int(1, i64::MAX)? as u64,
            "eoslog.accept.replication.factor" => {
                self.accept_replication_factor = match value.trim() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad("expected true or false")),
                }
            }
            "eoslog.maintenance.interval.ms" => self.maintenance_interval_ms = int(1, i32_max)? as u64,
            // No authorizer: every client may do everything, and the ACL requests are
            // answered SECURITY_DISABLED, as a Kafka broker without one answers them. Kafka's
            // default (empty) is accepted and described, so that tools can tell.
            "authorizer.class.name" if value.trim().is_empty() => {}
            "authorizer.class.name" => {
                return Err(bad(
                    "this broker has no authorizer (every client may do everything)",
                ))
            }
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                self.store.set(key, value)?;
                self.maintenance_interval_ms = self.maintenance_interval_ms.min(int(1, i32_max)? as u64);
            }
            _ => self.store.set(key, value)?,
        }
        Ok(())
    }

    /// Checks the rules that tie keys together (each key alone is checked by `set`).
    ///
    /// # Errors
    /// `queued.max.request.bytes` below `socket.request.max.bytes` (no request of the
    /// largest size could ever be read).
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.queued_max_request_bytes {
            Some(q) if q < self.socket_request_max_bytes => Err(ConfigError::InvalidValue {
                key: "queued.max.request.bytes".to_owned(),
                value: q.to_string(),
                reason: "must be at least socket.request.max.bytes (or -1 for no bound)",
            }),
            _ => Ok(()),
        }
    }

    /// Every key [`BrokerConfig::set`] takes with its value as `set` takes it: the broker's
    /// own, then the store's ([`StoreConfig::entries`]). For DescribeConfigs.
    #[must_use]
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("node.id", self.node_id.to_string()),
            ("broker.id", self.node_id.to_string()),
            (
                "group.initial.rebalance.delay.ms",
                self.group_initial_rebalance_delay_ms.to_string(),
            ),
            (
                "group.min.session.timeout.ms",
                self.group_min_session_timeout_ms.to_string(),
            ),
            (
                "group.max.session.timeout.ms",
                self.group_max_session_timeout_ms.to_string(),
            ),
            (
                "socket.request.max.bytes",
                self.socket_request_max_bytes.to_string(),
            ),
            (
                "queued.max.request.bytes",
                self.queued_max_request_bytes
                    .map_or("-1".to_owned(), |b| b.to_string()),
            ),
            ("max.connections", self.max_connections.to_string()),
            ("authorizer.class.name", String::new()),
            (
                "connections.max.idle.ms",
                self.connections_max_idle_ms.to_string(),
            ),
            (
                "eoslog.maintenance.interval.ms",
                self.maintenance_interval_ms.to_string(),
            ),
            (
                "eoslog.accept.replication.factor",
                self.accept_replication_factor.to_string(),
            ),
        ];
        out.extend(self.store.entries());
        out
    }

    /// Parses `KEY=VALUE` and sets it.
    ///
    /// # Errors
    /// As [`BrokerConfig::set`], or a missing `=`.
    pub fn set_pair(&mut self, pair: &str) -> Result<(), ConfigError> {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(ConfigError::InvalidValue {
                key: pair.to_owned(),
                value: String::new(),
                reason: "expected KEY=VALUE",
            });
        };
        self.set(k.trim(), v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_and_store_keys_are_taken_and_unknown_keys_refused() {
        let mut c = BrokerConfig::default();
        c.set_pair("group.initial.rebalance.delay.ms=0")
            .expect("broker key");
        c.set_pair("num.partitions=3").expect("store key");
        c.set_pair("transaction.abort.timed.out.transaction.cleanup.interval.ms=200")
            .expect("sweep");
        assert_eq!(c.group_initial_rebalance_delay_ms, 0);
        assert_eq!(c.store.num_partitions, 3);
        assert_eq!(c.maintenance_interval_ms, 200);
        assert!(matches!(
            c.set_pair("no.such.key=1"),
            Err(ConfigError::UnknownKey { .. })
        ));
        assert!(c.set_pair("socket.request.max.bytes=-5").is_err());
        c.set_pair("queued.max.request.bytes=-1").expect("unbounded");
        assert_eq!(c.queued_max_request_bytes, None);
        c.set_pair("socket.request.max.bytes=2048").expect("max");
        c.set_pair("queued.max.request.bytes=1024")
            .expect("in range alone");
        assert!(c.validate().is_err(), "below socket.request.max.bytes");
        c.set_pair("queued.max.request.bytes=4096").expect("bound");
        c.validate().expect("valid");
        assert!(c.set_pair("num.partitions").is_err());
        c.set_pair("authorizer.class.name=").expect("no authorizer");
        assert!(c
            .set_pair("authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer")
            .is_err());
    }

    #[test]
    fn entries_read_back_as_set_takes_them() {
        let mut c = BrokerConfig::default();
        c.set_pair("queued.max.request.bytes=-1").expect("unbounded");
        c.set_pair("node.id=3").expect("id");
        c.set_pair("log.segment.bytes=1048576").expect("store key");
        for config in [BrokerConfig::default(), c] {
            let entries = config.entries();
            for (k, v) in &entries {
                let mut again = config.clone();
                again.set(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
                // Every value reads back the same (the store also remembers which of a
                // key's synonyms was set, so the whole config is not compared).
                assert_eq!(again.entries(), entries, "{k}={v}");
                assert_eq!(
                    format!("{:?}", again.store.log_defaults),
                    format!("{:?}", config.store.log_defaults),
                    "{k}={v}"
                );
            }
        }
    }
}
