//! Model-based fuzzing of the transaction coordinator: an arbitrary sequence of coordinator
//! requests, produces, clock jumps, reopens and crashes drives a store and a small reference
//! model side by side; their answers and states must agree after every step. See
//! `../harness/coordinator_model.rs`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../harness/coordinator_model.rs"]
mod model;

/// An operation as the fuzzer generates it; ranges are bounded by `model::Op::normalized`.
#[derive(Arbitrary, Debug, Clone)]
enum FuzzOp {
    InitPid { id: u8, expected: bool },
    AddPartitions { id: u8, parts: u8, epoch_delta: i8 },
    Produce { id: u8, part: u8, tv2: bool, epoch_delta: i8 },
    AddOffsets { id: u8, epoch_delta: i8 },
    TxnOffsetCommit { id: u8, part: u8, offset: u8, tv2: bool, epoch_delta: i8 },
    EndTxn { id: u8, commit: bool, tv2: bool, epoch_delta: i8 },
    ClockJump { ms: u16 },
    OffsetDelete { part: u8 },
    DeleteGroup,
    Reopen,
    Crash,
}

impl From<FuzzOp> for model::Op {
    fn from(op: FuzzOp) -> model::Op {
        let op = match op {
            FuzzOp::InitPid { id, expected } => model::Op::InitPid { id, expected },
            FuzzOp::AddPartitions { id, parts, epoch_delta } => model::Op::AddPartitions { id, parts, epoch_delta },
            FuzzOp::Produce { id, part, tv2, epoch_delta } => model::Op::Produce { id, part, tv2, epoch_delta },
            FuzzOp::AddOffsets { id, epoch_delta } => model::Op::AddOffsets { id, epoch_delta },
            FuzzOp::TxnOffsetCommit { id, part, offset, tv2, epoch_delta } => {
                model::Op::TxnOffsetCommit { id, part, offset, tv2, epoch_delta }
            }
            FuzzOp::EndTxn { id, commit, tv2, epoch_delta } => model::Op::EndTxn { id, commit, tv2, epoch_delta },
            FuzzOp::ClockJump { ms } => model::Op::ClockJump { ms },
            FuzzOp::OffsetDelete { part } => model::Op::OffsetDelete { part },
            FuzzOp::DeleteGroup => model::Op::DeleteGroup,
            FuzzOp::Reopen => model::Op::Reopen,
            FuzzOp::Crash => model::Op::Crash,
        };
        op.normalized()
    }
}

/// At most this many operations per run, so each run stays fast.
const MAX_OPS: usize = 50;

fuzz_target!(|ops: Vec<FuzzOp>| {
    let ops: Vec<model::Op> = ops.into_iter().take(MAX_OPS).map(model::Op::from).collect();
    model::run(&ops);
});
