//! Model-based fuzzing of compaction: an arbitrary sequence of writes, transaction ends,
//! rolls, cleans, expiry, horizon passing, reopens and crashes drives a compacted log; after
//! every clean and reopen, read_committed by key must equal the model, no aborted record may
//! show and every tracked producer's last batch must still be a duplicate. See
//! `../harness/compaction_model.rs`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../harness/compaction_model.rs"]
mod model;

#[derive(Arbitrary, Debug, Clone)]
enum FuzzOp {
    Put { slot: u8, key: u8, n: u8, tombstone: bool },
    End { slot: u8, commit: bool },
    Roll,
    Clean { keys: u8 },
    Advance,
    Expire,
    Reopen,
    Crash,
}

impl From<FuzzOp> for model::Op {
    fn from(op: FuzzOp) -> model::Op {
        match op {
            FuzzOp::Put { slot, key, n, tombstone } => model::Op::Put { slot, key, n, tombstone },
            FuzzOp::End { slot, commit } => model::Op::End { slot, commit },
            FuzzOp::Roll => model::Op::Roll,
            FuzzOp::Clean { keys } => model::Op::Clean { keys },
            FuzzOp::Advance => model::Op::Advance,
            FuzzOp::Expire => model::Op::Expire,
            FuzzOp::Reopen => model::Op::Reopen,
            FuzzOp::Crash => model::Op::Crash,
        }
    }
}

fuzz_target!(|ops: Vec<FuzzOp>| {
    if ops.len() > 120 {
        return;
    }
    let ops: Vec<model::Op> = ops.into_iter().map(Into::into).collect();
    model::run(&ops);
});
