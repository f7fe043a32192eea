//! `eoslog-broker --data-dir DIR --listen HOST:PORT [--config KEY=VALUE]...`
//!
//! Prints `listening on HOST:PORT` once it accepts connections; SIGTERM or SIGINT closes
//! every log cleanly and exits 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

mod alloc;

use clap::Parser;
use eoslog_broker::{Broker, BrokerConfig};

#[derive(Parser, Debug)]
#[command(version, about = "A single-node Kafka-protocol broker over an eoslog store")]
struct Args {
    /// The store's directory (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// The address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9092")]
    listen: SocketAddr,
    /// A Kafka broker config, KEY=VALUE (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    configs: Vec<String>,
}

/// Survives forged array counts in requests (see `alloc`).
#[global_allocator]
static GLOBAL: alloc::Allocator = alloc::Allocator;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EOSLOG_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = BrokerConfig::default();
    for pair in &args.configs {
        if let Err(e) = config.set_pair(pair) {
            eprintln!("eoslog-broker: --config {pair}: {e}");
            return ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("eoslog-broker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let broker = match Broker::start(&args.data_dir, args.listen, config).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("eoslog-broker: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("listening on {}", broker.local_addr());
        wait_for_signal().await;
        match broker.shutdown().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("eoslog-broker: shutdown: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        // Without signal handlers the broker runs until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
