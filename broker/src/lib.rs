//! `eoslog-broker`: a single-node broker that speaks Kafka's wire protocol over an eoslog
//! [`Store`] and its embedded transaction coordinator, so that unmodified Kafka clients
//! (librdkafka, kafka-python, aiokafka, kafkajs, kcat) produce, consume and run
//! exactly-once transactions through eoslog.
//!
//! It is also the example of how to embed eoslog in a broker: the library keeps the
//! partitions, producer state, transactions and offsets; this crate adds sockets, the
//! protocol (the `kafka-protocol` crate), consumer-group membership, and long-polling
//! fetches.
//!
//! ```no_run
//! # async fn run() -> Result<(), eoslog_broker::BrokerError> {
//! let broker = eoslog_broker::Broker::start(
//!     "/tmp/eoslog-data".as_ref(),
//!     "127.0.0.1:9092".parse().expect("address"),
//!     eoslog_broker::BrokerConfig::default(),
//! )
//! .await?;
//! println!("listening on {}", broker.local_addr());
//! broker.shutdown().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod groups;
mod handlers;
mod server;
mod versions;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eoslog::{LogOptions, Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use config::BrokerConfig;
pub use versions::SUPPORTED as SUPPORTED_APIS;

/// Why the broker could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The store could not be opened or closed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
    /// A blocking task failed to run.
    #[error("background task: {0}")]
    Task(String),
    /// The configuration breaks a rule that ties keys together.
    #[error("configuration: {0}")]
    Config(#[from] eoslog::ConfigError),
}

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) config: BrokerConfig,
    pub(crate) groups: groups::Groups,
    /// The address advertised in Metadata and FindCoordinator.
    pub(crate) advertised: SocketAddr,
    /// Woken when data or a marker lands, so that waiting fetches look again.
    pub(crate) data_arrived: Notify,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) connections: AtomicUsize,
    /// `queued.max.request.bytes` as permits of one byte each (`None`: no bound).
    pub(crate) request_bytes: Option<Arc<tokio::sync::Semaphore>>,
}

/// A running broker.
pub struct Broker {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Broker {
    /// Opens (or creates) the store in `data_dir`, binds `listen` (port 0 picks a free
    /// port) and starts serving.
    ///
    /// # Errors
    /// The store cannot open, or the address cannot be bound.
    pub async fn start(
        data_dir: &Path,
        listen: SocketAddr,
        config: BrokerConfig,
    ) -> Result<Broker, BrokerError> {
        Self::start_with(data_dir, listen, config, LogOptions::default()).await
    }

    /// [`Broker::start`] with the store's file system and clock given (tests drive
    /// timeouts and retention with a manual clock).
    ///
    /// # Errors
    /// As [`Broker::start`].
    pub async fn start_with(
        data_dir: &Path,
        listen: SocketAddr,
        config: BrokerConfig,
        options: LogOptions,
    ) -> Result<Broker, BrokerError> {
        config.validate()?;
        let dir = data_dir.to_owned();
        let store_config = config.store.clone();
        let store = tokio::task::spawn_blocking(move || Store::open_with(dir, store_config, options))
            .await
            .map_err(|e| BrokerError::Task(e.to_string()))??;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| BrokerError::Listen { addr: listen, source })?;
        let advertised = listener
            .local_addr()
            .map_err(|source| BrokerError::Listen { addr: listen, source })?;
        let (shutdown, _) = watch::channel(false);
        let request_bytes = config
            .queued_max_request_bytes
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n)));
        let shared = Arc::new(Shared {
            request_bytes,
            groups: groups::Groups::new(&config, &store),
            store,
            config,
            advertised,
            data_arrived: Notify::new(),
            shutdown,
            connections: AtomicUsize::new(0),
        });
        let mut tasks = vec![
            tokio::spawn(accept_loop(shared.clone(), listener)),
            tokio::spawn(maintenance_loop(shared.clone())),
        ];
        // Per `__consumer_offsets` partition: its groups' timer and record writer.
        for k in 0..shared.groups.partitions() {
            tasks.push(tokio::spawn(groups::timer_loop(shared.clone(), k)));
            tasks.push(tokio::spawn(groups::writer_loop(shared.clone(), k)));
        }
        for _ in 0..shared.config.store.cleaner_threads {
            tasks.push(tokio::spawn(cleaner_loop(shared.clone())));
        }
        Ok(Broker { shared, tasks })
    }

    /// The address clients connect to.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.advertised
    }

    /// The store under the broker.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Stops accepting, closes every connection, waits for requests in flight, and closes
    /// every log cleanly.
    ///
    /// # Errors
    /// The store failed to close (its logs are then recovered at the next open).
    pub async fn shutdown(self) -> Result<(), BrokerError> {
        let _ = self.shared.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let mut shared = self.shared;
        // Requests in flight hold the shared state; they finish within their own bounds.
        for _ in 0..600 {
            match Arc::try_unwrap(shared) {
                Ok(s) => {
                    return tokio::task::spawn_blocking(move || s.store.close())
                        .await
                        .map_err(|e| BrokerError::Task(e.to_string()))?
                        .map_err(BrokerError::from);
                }
                Err(back) => {
                    shared = back;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        tracing::warn!(target: "eoslog_broker", "requests still running after 30 s; flushing instead of closing");
        let s = shared.clone();
        tokio::task::spawn_blocking(move || s.store.flush())
            .await
            .map_err(|e| BrokerError::Task(e.to_string()))??;
        Ok(())
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|&stop| stop) => return,
        };
        match accepted {
            Ok((stream, _)) => {
                if shared.connections.fetch_add(1, Ordering::Relaxed) >= shared.config.max_connections {
                    shared.connections.fetch_sub(1, Ordering::Relaxed);
                    drop(stream);
                    continue;
                }
                tokio::spawn(server::serve(shared.clone(), stream));
            }
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::warn!(target: "eoslog_broker", error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The store's maintenance (flush, retention, transaction timeouts and expiry, marker
/// retries) on a timer; a timed-out transaction's abort wakes waiting fetches.
/// One of `log.cleaner.threads`: cleaner passes on a blocking thread, and after a pass that
/// cleaned nothing a sleep of `log.cleaner.backoff.ms` (at least 50 ms, so that a backoff of
/// 0 does not spin).
async fn cleaner_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let backoff = Duration::from_millis(shared.config.store.cleaner_backoff_ms.max(50) as u64);
    loop {
        let s = shared.clone();
        let cleaned = match tokio::task::spawn_blocking(move || s.store.run_cleaner()).await {
            Ok(report) => {
                tracing::trace!(target: "eoslog_broker", ?report, "cleaner pass");
                report.cleaned_logs
            }
            Err(e) => {
                tracing::warn!(target: "eoslog_broker", error = %e, "cleaner pass failed");
                0
            }
        };
        let pause = if cleaned > 0 { Duration::ZERO } else { backoff };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.wait_for(|&stop| stop) => return,
        }
    }
}

async fn maintenance_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let period = Duration::from_millis(shared.config.maintenance_interval_ms);
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = shutdown.wait_for(|&stop| stop) => return,
        }
        let s = shared.clone();
        let report = tokio::task::spawn_blocking(move || s.store.run_maintenance()).await;
        if let Ok(report) = report {
            tracing::trace!(target: "eoslog_broker", ?report, "maintenance");
            groups::forget_deleted(&shared, &report.deleted_groups);
        }
        shared.data_arrived.notify_waiters();
    }
}
