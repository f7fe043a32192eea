//! The `eoslog` command-line tool: inspect, verify and operate on eoslog (Kafka-format)
//! partition directories.
//!
//! `dump` and `verify` read the files directly and never change anything; every other command
//! opens the log with `Log::open` (which recovers it after an unclean shutdown) and closes it
//! cleanly. JSON output is one object per line on stdout; errors go to stderr.
//!
//! Exit status: 0 success; 1 a failure or damage found (details already printed); 2 a usage
//! or configuration error.

mod cleancmd;
mod dump;
mod logcmd;
mod scan;
mod storecmd;
mod verify;

use std::{
    io::{self, BufWriter, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

/// Why the tool stops with a non-zero status.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    /// Printed on stderr (nothing when empty: the problem was already reported).
    message: String,
}

impl Failure {
    /// Bad arguments or configuration (status 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
    /// The operation failed (status 1).
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
    /// A failure already reported on stdout or stderr.
    pub fn silent(code: u8) -> Failure {
        Failure {
            code,
            message: String::new(),
        }
    }
}

/// An error and its chain of causes, as one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}

/// Buffered stdout. A write failure (e.g. a closed pipe) stops the command.
pub struct Out {
    w: BufWriter<io::Stdout>,
}

impl Out {
    fn write_failure(e: &io::Error) -> Failure {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::silent(1)
        } else {
            Failure::failed(format!("cannot write to stdout: {e}"))
        }
    }
    /// One line of text.
    pub fn line(&mut self, s: &str) -> Result<(), Failure> {
        writeln!(self.w, "{s}").map_err(|e| Self::write_failure(&e))
    }
    /// One JSON object on its own line.
    pub fn json(&mut self, v: &Value) -> Result<(), Failure> {
        serde_json::to_writer(&mut self.w, v)
            .map_err(io::Error::from)
            .and_then(|()| self.w.write_all(b"\n"))
            .map_err(|e| Self::write_failure(&e))
    }
    /// Pushes buffered output out (used between appends so a reader sees each outcome).
    pub fn flush(&mut self) -> Result<(), Failure> {
        self.w.flush().map_err(|e| Self::write_failure(&e))
    }
}

#[derive(Parser)]
#[command(
    name = "eoslog",
    version,
    about = "Inspect, verify and operate on eoslog (Kafka-format) partition directories",
    after_help = "Exit status: 0 success, 1 failure or damage found, 2 usage or configuration error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every batch of a segment file, or of every segment of a directory, read directly
    /// from the files (works on a locked or damaged directory, changes nothing).
    ///
    /// With --json, one object per batch: base_offset, last_offset, count, position, size,
    /// magic, crc, is_valid, compression, producer_id, producer_epoch, base_sequence,
    /// is_transactional, is_control, control_type, partition_leader_epoch, max_timestamp (and
    /// records with --records). Where a file stops holding whole batches, a final
    /// {"error", "position"} object. Exits 1 when a batch is invalid or the file is torn.
    Dump(DumpArgs),
    /// Check every segment and index of a directory without changing anything.
    ///
    /// Checks each batch's length, magic, CRC and offset order, and each .index, .timeindex and
    /// .txnindex against its segment. Exits 0 with a summary when sound; exits 1 naming the
    /// file and byte position of the first problem. Progress goes to stderr.
    Verify(VerifyArgs),
    /// Append concatenated v2 record batches read from stdin, one append per batch.
    ///
    /// Prints one line per batch: {"status":"appended"|"duplicate","base_offset","last_offset"}
    /// or {"status":"error","error":KAFKA_ERROR_NAME}. A refused batch writes nothing and the
    /// next one is still tried. Exits 1 only on a storage failure or input that cannot be
    /// split into batches. Creates the directory when it does not exist.
    Append(AppendArgs),
    /// Print the records visible from an offset.
    Read(ReadArgs),
    /// Truncate the log to an offset, or delete everything and start at an offset.
    Truncate(TruncateArgs),
    /// Move the log start offset forward (Kafka's DeleteRecords).
    DeleteRecords(DeleteRecordsArgs),
    /// List the producers the log tracks.
    Producers(ProducersArgs),
    /// Run one clean (compaction) of everything cleanable, whatever the dirty ratio.
    ///
    /// Opens the log with `cleanup.policy=compact` unless `--config` sets it; keeps the
    /// latest record of each key, removes aborted data, and tombstones and markers past
    /// `delete.retention.ms`. `describe` shows the dirty ratio and the last clean.
    Compact(CompactArgs),
    /// Describe the log: offsets, segments, transactions and statistics.
    Describe(DescribeArgs),
    /// Run one fetch and print what a fetch response would carry.
    Fetch(FetchArgs),
    /// List the open transactions.
    Txns(TxnsArgs),
    /// Write an ABORT marker for a producer, as a transaction coordinator does.
    ///
    /// Prints the outcome as `append` does; exits 1 when the marker is refused (fenced).
    Abort(AbortArgs),
    /// The transactions of a store (what kafka-transactions.sh does): list, describe,
    /// find-hanging, abort. Opens the store, which completes transactions decided before a
    /// crash and aborts timed-out ones, as every open does.
    Transactions(TransactionsArgs),
    /// The consumer groups of a store: `list` prints every group with its stored state
    /// (generation, protocol, members); `offsets --group G` prints the committed offsets and
    /// the producers whose transactions hold pending ones; `delete` and `delete-offsets`
    /// remove groups and offsets as DeleteGroups and OffsetDelete do.
    Groups(GroupsArgs),
}

/// The store directory and configuration of a store command.
#[derive(Args)]
struct StoreArgs {
    /// The store directory.
    #[arg(long, global = true, default_value = ".")]
    store: PathBuf,
    /// Set a store configuration key (Kafka broker names, or `eoslog.*`); repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE", global = true)]
    config: Vec<String>,
    /// One JSON object per line.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Args)]
struct TransactionsArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: TxnCommand,
}

#[derive(Subcommand)]
enum TxnCommand {
    /// List transactional ids with their producer id and state.
    List {
        /// Only this state (Empty, Ongoing, PrepareCommit, ...); repeatable.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only this producer id; repeatable.
        #[arg(long = "producer-id")]
        producer_ids: Vec<i64>,
        /// Only transactions running at least this long.
        #[arg(long)]
        min_duration_ms: Option<i64>,
    },
    /// Describe one transactional id.
    Describe {
        #[arg(long)]
        transactional_id: String,
    },
    /// Open transactions at partitions that their coordinator will not end: older than
    /// transaction.max.timeout.ms, or not part of their producer's ongoing transaction.
    FindHanging {
        #[arg(long)]
        topic: Option<String>,
        #[arg(long)]
        partition: Option<i32>,
    },
    /// Abort a hanging transaction at one partition, at its producer's epoch.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["start_offset", "producer_id"])))]
    Abort {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        /// The transaction's first offset.
        #[arg(long)]
        start_offset: Option<i64>,
        /// The transaction's producer id.
        #[arg(long)]
        producer_id: Option<i64>,
    },
}

#[derive(Args)]
struct GroupsArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Every group with committed offsets or stored metadata: its generation, protocol and
    /// members as last stored (what a restarted broker resumes).
    List,
    /// A group's committed offsets, and the producers with offsets pending.
    Offsets {
        #[arg(long)]
        group: String,
    },
    /// Delete groups with every committed offset, as DeleteGroups does
    /// (`kafka-consumer-groups --delete`): refused for a group whose stored record lists
    /// members (a restarted broker would resume it).
    Delete {
        /// A group to delete; repeatable.
        #[arg(long = "group", required = true)]
        groups: Vec<String>,
    },
    /// Delete a group's offsets of some topics, as OffsetDelete does
    /// (`kafka-consumer-groups --delete-offsets`).
    DeleteOffsets {
        #[arg(long)]
        group: String,
        /// `TOPIC` (every partition) or `TOPIC:P,P,...`; repeatable.
        #[arg(long = "topic", required = true)]
        topics: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DecodeArg {
    /// `__transaction_state` records.
    TransactionLog,
    /// `__consumer_offsets` records.
    Offsets,
}

#[derive(Args)]
struct DumpArgs {
    /// A partition directory or one `.log` segment file.
    path: PathBuf,
    /// One JSON object per batch.
    #[arg(long)]
    json: bool,
    /// Also print each batch's records.
    #[arg(long)]
    records: bool,
    /// Decode the records of an internal topic (implies --records), as kafka-dump-log's
    /// --transaction-log-decoder and --offsets-decoder do.
    #[arg(long, value_enum)]
    decode: Option<DecodeArg>,
}

#[derive(Args)]
struct VerifyArgs {
    /// A partition directory (or one `.log` segment file).
    dir: PathBuf,
    /// Print the summary or the first problem as a JSON object.
    #[arg(long)]
    json: bool,
    /// Bytes of log data between progress lines on stderr.
    #[arg(long, hide = true, default_value_t = 256 << 20)]
    progress_every: u64,
}

/// The partition directory and configuration of a command that opens the log.
#[derive(Args)]
struct LogArgs {
    /// The partition directory.
    dir: PathBuf,
    /// Set a log configuration key (Kafka topic-config names, or `eoslog.*`); repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum OriginArg {
    Client,
    Replication,
    Coordinator,
}

#[derive(Clone, Copy, ValueEnum)]
enum IsolationArg {
    #[value(name = "read_uncommitted")]
    ReadUncommitted,
    #[value(name = "read_committed")]
    ReadCommitted,
    /// Up to the log end offset, as a follower reads.
    #[value(name = "replica")]
    Replica,
}

#[derive(Args)]
struct AppendArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Who appends: decides which checks apply. A client's or coordinator's record is judged
    /// against the system clock (`message.timestamp.after.max.ms`: an hour ahead at most by
    /// default); a replicated one is stored as it is.
    #[arg(long, value_enum, default_value = "client")]
    origin: OriginArg,
    /// Leader epoch to stamp into each batch.
    #[arg(long)]
    leader_epoch: Option<i32>,
    /// fsync before each append returns.
    #[arg(long)]
    sync: bool,
}

#[derive(Args)]
struct ReadArgs {
    #[command(flatten)]
    log: LogArgs,
    /// First offset to read.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    from: i64,
    /// Bytes of batches per fetch (every visible record is printed).
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u32).range(1..))]
    max_bytes: u32,
    #[arg(long, value_enum, default_value = "read_uncommitted")]
    isolation: IsolationArg,
    /// Set the high watermark first (switches the log to eoslog.high.watermark=manual).
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    high_watermark: Option<i64>,
    /// One JSON object per record.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["to", "fully"])))]
struct TruncateArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Remove every offset at or above this one.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    to: Option<i64>,
    /// Delete everything and start an empty log at --start-at.
    #[arg(long, requires = "start_at")]
    fully: bool,
    /// The offset an emptied log starts at (with --fully).
    #[arg(long, requires = "fully", value_parser = clap::value_parser!(i64).range(0..))]
    start_at: Option<i64>,
    /// Print the resulting offsets as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DeleteRecordsArgs {
    #[command(flatten)]
    log: LogArgs,
    /// The new log start offset (at most the high watermark).
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    before: i64,
    /// Print the resulting offsets as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ProducersArgs {
    #[command(flatten)]
    log: LogArgs,
    /// One JSON object per producer.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DescribeArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Set the high watermark first (switches the log to eoslog.high.watermark=manual).
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    high_watermark: Option<i64>,
    /// One JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CompactArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Memory for the key map (`log.cleaner.dedupe.buffer.size`, default 128 MiB).
    #[arg(long)]
    dedupe_buffer_bytes: Option<usize>,
    /// One JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct FetchArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Fetch offset.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    from: i64,
    /// Fetch size in bytes (at least one batch is returned when one is visible).
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u32).range(1..))]
    max_bytes: u32,
    #[arg(long, value_enum, default_value = "read_uncommitted")]
    isolation: IsolationArg,
    /// Set the high watermark first (switches the log to eoslog.high.watermark=manual).
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    high_watermark: Option<i64>,
    /// One JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct TxnsArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Only transactions past Kafka's "late" bound (transaction.max.timeout.ms + 5 min).
    #[arg(long)]
    hanging: bool,
    /// One JSON object per transaction.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct AbortArgs {
    #[command(flatten)]
    log: LogArgs,
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    producer_id: i64,
    #[arg(long, value_parser = clap::value_parser!(i16).range(0..))]
    producer_epoch: i16,
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    coordinator_epoch: i32,
}

fn run(command: Command, out: &mut Out) -> Result<(), Failure> {
    use logcmd::{Isolation, Origin};
    let isolation = |i: IsolationArg| match i {
        IsolationArg::ReadUncommitted => Isolation::ReadUncommitted,
        IsolationArg::ReadCommitted => Isolation::ReadCommitted,
        IsolationArg::Replica => Isolation::Replica,
    };
    match command {
        Command::Dump(a) => dump::run(
            &a.path,
            &dump::DumpOptions {
                json: a.json,
                records: a.records || a.decode.is_some(),
                decode: a.decode.map(|d| match d {
                    DecodeArg::TransactionLog => eoslog::TRANSACTION_STATE_TOPIC,
                    DecodeArg::Offsets => eoslog::CONSUMER_OFFSETS_TOPIC,
                }),
            },
            out,
        ),
        Command::Verify(a) => verify::run(
            &a.dir,
            &verify::VerifyOptions {
                json: a.json,
                progress_every: a.progress_every,
            },
            out,
        ),
        Command::Append(a) => {
            let origin = match a.origin {
                OriginArg::Client => Origin::Client,
                OriginArg::Replication => Origin::Replication,
                OriginArg::Coordinator => Origin::Coordinator,
            };
            logcmd::append(&a.log.dir, &a.log.config, origin, a.leader_epoch, a.sync, out)
        }
        Command::Read(a) => logcmd::read(
            &a.log.dir,
            &a.log.config,
            &logcmd::ReadOptions {
                from: a.from,
                max_bytes: a.max_bytes as usize,
                isolation: isolation(a.isolation),
                high_watermark: a.high_watermark,
                json: a.json,
            },
            out,
        ),
        Command::Truncate(a) => {
            let mode = match (a.to, a.start_at) {
                (Some(to), _) => logcmd::Truncate::To(to),
                (None, Some(start)) => logcmd::Truncate::Fully(start),
                (None, None) => return Err(Failure::usage("truncate needs --to or --fully --start-at")),
            };
            logcmd::truncate(&a.log.dir, &a.log.config, mode, a.json, out)
        }
        Command::DeleteRecords(a) => logcmd::delete_records(&a.log.dir, &a.log.config, a.before, a.json, out),
        Command::Producers(a) => logcmd::producers(&a.log.dir, &a.log.config, a.json, out),
        Command::Compact(a) => {
            cleancmd::compact(&a.log.dir, &a.log.config, a.dedupe_buffer_bytes, a.json, out)
        }
        Command::Describe(a) => logcmd::describe(&a.log.dir, &a.log.config, a.high_watermark, a.json, out),
        Command::Fetch(a) => logcmd::fetch(
            &a.log.dir,
            &a.log.config,
            &logcmd::ReadOptions {
                from: a.from,
                max_bytes: a.max_bytes as usize,
                isolation: isolation(a.isolation),
                high_watermark: a.high_watermark,
                json: a.json,
            },
            out,
        ),
        Command::Txns(a) => logcmd::txns(&a.log.dir, &a.log.config, a.hanging, a.json, out),
        Command::Abort(a) => logcmd::abort(
            &a.log.dir,
            &a.log.config,
            a.producer_id,
            a.producer_epoch,
            a.coordinator_epoch,
            out,
        ),
        Command::Transactions(a) => {
            let (dir, cfg, json) = (&a.store.store, &a.store.config, a.store.json);
            match a.command {
                TxnCommand::List {
                    states,
                    producer_ids,
                    min_duration_ms,
                } => storecmd::list(dir, cfg, &states, &producer_ids, min_duration_ms, json, out),
                TxnCommand::Describe { transactional_id } => {
                    storecmd::describe(dir, cfg, &transactional_id, json, out)
                }
                TxnCommand::FindHanging { topic, partition } => {
                    storecmd::find_hanging(dir, cfg, topic.as_deref(), partition, json, out)
                }
                TxnCommand::Abort {
                    topic,
                    partition,
                    start_offset,
                    producer_id,
                } => storecmd::abort(
                    dir,
                    cfg,
                    &eoslog::TopicPartition::new(&topic, partition),
                    start_offset,
                    producer_id,
                    out,
                ),
            }
        }
        Command::Groups(a) => match a.command {
            GroupCommand::List => storecmd::group_list(&a.store.store, &a.store.config, a.store.json, out),
            GroupCommand::Offsets { group } => {
                storecmd::group_offsets(&a.store.store, &a.store.config, &group, a.store.json, out)
            }
            GroupCommand::Delete { groups } => {
                storecmd::group_delete(&a.store.store, &a.store.config, &groups, a.store.json, out)
            }
            GroupCommand::DeleteOffsets { group, topics } => storecmd::group_delete_offsets(
                &a.store.store,
                &a.store.config,
                &group,
                &topics,
                a.store.json,
                out,
            ),
        },
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = Out {
        w: BufWriter::new(io::stdout()),
    };
    let result = run(cli.command, &mut out);
    let flushed = out.flush();
    match result.and(flushed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("eoslog: error: {}", f.message);
            }
            ExitCode::from(f.code.max(1))
        }
    }
}
