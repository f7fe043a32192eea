//! Reading a segment's `.log` file: batch headers alone (the read path) or whole batches with
//! their CRC checked (recovery, replay, verification), never trusting a length field beyond
//! the file.

use std::ops::ControlFlow;

use crate::batch::{RecordBatch, HEADER_SIZE, LOG_OVERHEAD};
use crate::codec::{be_i32, be_i64};
use crate::error::{BatchError, StorageError};

use super::{BatchInfo, ScanEnd, Segment};

impl Segment {
    /// Reads the header of the batch at `position` (`None` at or past `limit`).
    pub(crate) fn read_header(
        &self,
        position: u64,
        limit: u64,
    ) -> Result<Option<Result<BatchInfo, BatchError>>, StorageError> {
        if position + LOG_OVERHEAD as u64 > limit {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_SIZE];
        let want = (limit - position).min(HEADER_SIZE as u64) as usize;
        let n = self.read_exact_at(&mut buf[..want], position)?;
        Ok(Some(parse_header(&buf[..n], position, limit)))
    }

    pub(crate) fn read_exact_at(&self, buf: &mut [u8], position: u64) -> Result<usize, StorageError> {
        let mut done = 0;
        while done < buf.len() {
            let n = self
                .log
                .read_at(&mut buf[done..], position + done as u64)
                .map_err(|e| StorageError::io("read", &self.log_path, e))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Walks batch headers in `[from, limit)`, calling `f` for each, without reading records.
    pub(crate) fn scan_headers(
        &self,
        from: u64,
        limit: u64,
        mut f: impl FnMut(&BatchInfo) -> ControlFlow<()>,
    ) -> Result<ScanEnd, StorageError> {
        let mut pos = from;
        loop {
            match self.read_header(pos, limit)? {
                None => {
                    return Ok(if pos == limit {
                        ScanEnd::Clean
                    } else {
                        ScanEnd::Invalid {
                            position: pos,
                            error: BatchError::Truncated {
                                needed: LOG_OVERHEAD as u64,
                                available: limit - pos,
                            },
                        }
                    })
                }
                Some(Err(error)) => return Ok(ScanEnd::Invalid { position: pos, error }),
                Some(Ok(info)) => {
                    if f(&info).is_break() {
                        return Ok(ScanEnd::Stopped);
                    }
                    pos += info.size;
                }
            }
        }
    }

    /// Walks whole batches (header and records) in `[from, limit)` with a bounded buffer,
    /// validating size, magic and CRC of each. Used by recovery and verification.
    pub(crate) fn scan_batches(
        &self,
        from: u64,
        limit: u64,
        mut f: impl FnMut(u64, RecordBatch<'_>) -> Result<ControlFlow<()>, StorageError>,
    ) -> Result<ScanEnd, StorageError> {
        const CHUNK: usize = 1 << 20;
        // Never trust a length field beyond the file: a torn tail may claim gigabytes.
        let file_len = self
            .log
            .len()
            .map_err(|e| StorageError::io("stat", &self.log_path, e))?;
        let limit = limit.min(file_len);
        // `buf[consumed..filled]` holds unread bytes from file position `buf_pos + consumed`.
        // The buffer only grows (zero-filled once); a refill moves the unread tail to the
        // front and reads after it.
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_pos = from; // file position of buf[0]
        let mut consumed = 0usize;
        let mut filled = 0usize;
        loop {
            let pos = buf_pos + consumed as u64;
            if pos >= limit {
                return Ok(ScanEnd::Clean);
            }
            let avail = &buf[consumed..filled];
            let needed = match crate::batch::peek_batch_size(avail) {
                Some((_, len)) if len >= 0 => LOG_OVERHEAD + len as usize,
                _ => LOG_OVERHEAD,
            };
            if avail.len() < needed {
                if (limit - pos) < needed as u64 {
                    // Torn: the batch would run past the end.
                    let error = match RecordBatch::parse(avail) {
                        Err(e) => e,
                        Ok(_) => BatchError::Truncated {
                            needed: needed as u64,
                            available: limit - pos,
                        },
                    };
                    return Ok(ScanEnd::Invalid { position: pos, error });
                }
                // Refill: keep the unconsumed tail, read at least `needed` bytes.
                buf.copy_within(consumed..filled, 0);
                filled -= consumed;
                buf_pos = pos;
                consumed = 0;
                let want = needed.max(CHUNK).min((limit - pos) as usize);
                if buf.len() < want {
                    buf.resize(want, 0);
                }
                let n = self.read_exact_at(&mut buf[filled..want], pos + filled as u64)?;
                filled += n;
                if filled == 0 {
                    return Ok(ScanEnd::Clean); // end of file on a batch boundary
                }
                if filled < needed {
                    return Ok(ScanEnd::Invalid {
                        position: pos,
                        error: BatchError::Truncated {
                            needed: needed as u64,
                            available: filled as u64,
                        },
                    });
                }
                continue;
            }
            let batch = match RecordBatch::parse(avail) {
                Ok((b, _)) => b,
                Err(error) => return Ok(ScanEnd::Invalid { position: pos, error }),
            };
            if let Err(error) = batch.validate_crc() {
                return Ok(ScanEnd::Invalid { position: pos, error });
            }
            let size = batch.size();
            if f(pos, batch)?.is_break() {
                return Ok(ScanEnd::Stopped);
            }
            consumed += size;
        }
    }
}

/// Parses the header bytes of a batch at `position` (at most 61 bytes given), checking the
/// length against `limit` but not the CRC.
fn parse_header(buf: &[u8], position: u64, limit: u64) -> Result<BatchInfo, BatchError> {
    let Some((base, len)) = crate::batch::peek_batch_size(buf) else {
        return Err(BatchError::Truncated {
            needed: LOG_OVERHEAD as u64,
            available: buf.len() as u64,
        });
    };
    if len < (HEADER_SIZE - LOG_OVERHEAD) as i32 {
        return Err(BatchError::InvalidLength { declared: len });
    }
    let size = LOG_OVERHEAD as u64 + len as u64;
    if position + size > limit {
        return Err(BatchError::Truncated {
            needed: size,
            available: limit - position,
        });
    }
    if buf.len() < HEADER_SIZE {
        return Err(BatchError::Truncated {
            needed: HEADER_SIZE as u64,
            available: buf.len() as u64,
        });
    }
    let magic = buf[crate::batch::MAGIC_OFFSET] as i8;
    if magic != crate::batch::MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic { magic });
    }
    let delta = be_i32(buf, crate::batch::LAST_OFFSET_DELTA_OFFSET).unwrap_or(0);
    let max_ts = be_i64(buf, crate::batch::MAX_TIMESTAMP_OFFSET).unwrap_or(-1);
    Ok(BatchInfo {
        position,
        size,
        base_offset: base,
        last_offset: base.saturating_add(i64::from(delta)),
        max_timestamp: max_ts,
    })
}
