//! Writes record batches of one idempotent producer to stdout, back to back, as a Kafka
//! producer's requests would carry them: the input of `eoslog append` in
//! `benches/cli_append.sh`.
//!
//! ```sh
//! cargo run --release --example idempotent_batches -- 1073741824 16384 > batches.bin
//! ```
//! Arguments: total bytes (at most; whole batches only, default 1 GiB) and batch size in bytes
//! (default 16 KiB; 1 KiB records).

use std::io::{self, BufWriter, Write};

use eoslog::{BatchBuilder, NewRecord, ProducerEpoch, ProducerId, Sequence};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: u64 = args.next().map_or(Ok(1 << 30), |a| a.parse())?;
    let batch_bytes: usize = args.next().map_or(Ok(16 << 10), |a| a.parse())?;
    const RECORD: usize = 1000;
    let records = (batch_bytes / (RECORD + 16)).max(1);
    let values: Vec<Vec<u8>> = (0..records)
        .map(|r| (0..RECORD).map(|i| (i * 31 + r * 7) as u8).collect())
        .collect();
    let recs: Vec<NewRecord<'_>> = values
        .iter()
        .map(|v| NewRecord::value(1_700_000_000_000, v))
        .collect();
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let (mut written, mut seq, mut batches) = (0u64, 0i32, 0u64);
    loop {
        let b = BatchBuilder::idempotent(ProducerId(1), ProducerEpoch(0), Sequence(seq)).build(&recs)?;
        if written + b.len() as u64 > total {
            break;
        }
        out.write_all(&b)?;
        written += b.len() as u64;
        batches += 1;
        seq = seq.wrapping_add(records as i32);
    }
    out.flush()?;
    eprintln!("{batches} batches, {written} bytes");
    Ok(())
}
