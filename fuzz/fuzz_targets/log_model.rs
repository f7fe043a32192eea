//! Model-based fuzzing: an arbitrary sequence of operations drives the engine and a small
//! in-memory model of one partition side by side; their answers must agree after every step.
//! See `../harness/model.rs`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../harness/model.rs"]
mod model;

/// An operation as the fuzzer generates it; ranges are bounded by `model::Op::normalized`.
#[derive(Arbitrary, Debug, Clone)]
enum FuzzOp {
    Append {
        pid: u8,
        txn: bool,
        n: u8,
        seq_choice: u8,
        epoch_delta: i8,
    },
    Marker {
        pid: u8,
        commit: bool,
        epoch_delta: i8,
        coord_delta: i8,
    },
    Roll,
    Reopen,
    Crash {
        cut: u16,
    },
    Truncate {
        back: u8,
    },
    TruncateFully,
    SetHighWatermark {
        back: u8,
    },
    DeleteRecords {
        back: u8,
    },
    Retention,
}

impl From<FuzzOp> for model::Op {
    fn from(op: FuzzOp) -> model::Op {
        let op = match op {
            FuzzOp::Append {
                pid,
                txn,
                n,
                seq_choice,
                epoch_delta,
            } => model::Op::Append {
                pid: i64::from(pid),
                txn,
                n: usize::from(n),
                seq_choice,
                epoch_delta,
            },
            FuzzOp::Marker {
                pid,
                commit,
                epoch_delta,
                coord_delta,
            } => model::Op::Marker {
                pid: i64::from(pid),
                commit,
                epoch_delta,
                coord_delta,
            },
            FuzzOp::Roll => model::Op::Roll,
            FuzzOp::Reopen => model::Op::Reopen,
            FuzzOp::Crash { cut } => model::Op::Crash { cut },
            FuzzOp::Truncate { back } => model::Op::Truncate { back },
            FuzzOp::TruncateFully => model::Op::TruncateFully,
            FuzzOp::SetHighWatermark { back } => model::Op::SetHighWatermark { back },
            FuzzOp::DeleteRecords { back } => model::Op::DeleteRecords { back },
            FuzzOp::Retention => model::Op::Retention,
        };
        op.normalized()
    }
}

/// At most this many operations per run, so each run stays fast.
const MAX_OPS: usize = 60;

fuzz_target!(|ops: Vec<FuzzOp>| {
    let ops: Vec<model::Op> = ops.into_iter().take(MAX_OPS).map(model::Op::from).collect();
    model::run(&ops);
});
