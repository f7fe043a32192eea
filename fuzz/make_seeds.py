#!/usr/bin/env python3
"""Writes the hand-made seed inputs under fuzz/seeds/<target>/ (run from anywhere).

Each seed is small and follows the input layout documented in fuzz/harness/<target>.rs.
The batch seeds reuse the kafka-python fixtures of test_fixture/ (real client bytes).
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "test_fixture", "kafka-python")


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def zigzag(v: int) -> bytes:
    u = (v << 1) ^ (v >> 63)
    u &= (1 << 64) - 1
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def nullable(b):
    return zigzag(-1) if b is None else zigzag(len(b)) + b


def record(offset_delta, key, value, headers=()):
    body = b"\x00" + zigzag(0) + zigzag(offset_delta) + nullable(key) + nullable(value)
    body += zigzag(len(headers))
    for k, v in headers:
        body += nullable(k) + nullable(v)
    return zigzag(len(body)) + body


def batch(records_area, count, attributes=0, pid=-1, epoch=-1, seq=-1, base=0):
    head = struct.pack(">hiqqqhii", attributes, max(count - 1, 0), 1_700_000_000_000,
                       1_700_000_000_000, pid, epoch, seq, count)
    body = head + records_area
    crc = crc32c(body)
    return struct.pack(">qii", base, len(body) + 9, -1) + b"\x02" + struct.pack(">I", crc) + body


def marker(commit, pid, epoch, coord):
    rec = record(0, struct.pack(">hh", 0, 1 if commit else 0), struct.pack(">hi", 0, coord))
    return batch(rec, 1, attributes=0x30, pid=pid, epoch=epoch, seq=-1)


def write(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


# batch_decode: mode byte, then bytes (harness/batch.rs).
for name in ["uncompressed", "gzip", "snappy", "lz4", "zstd", "idempotent", "transactional",
             "empty_key_value"]:
    write("batch_decode", f"raw-{name}", b"\x00" + fixture(f"{name}.bin"))
two = record(0, b"k", b"v", [(b"h", None)]) + record(1, None, b"")
write("batch_decode", "raw-two-batches", b"\x00" + batch(two, 2) + batch(two, 2, pid=9, epoch=0, seq=0))
write("batch_decode", "raw-commit-marker", b"\x00" + marker(True, 7, 1, 5))
write("batch_decode", "raw-abort-marker", b"\x00" + marker(False, 7, 1, 5))
# mode 1: fix up length and CRC in place.
write("batch_decode", "fixup-header-only", b"\x01" + batch(b"", 0)[:61])
# mode 2: prepend a header; attributes = mode >> 2, count = first payload byte.
write("batch_decode", "prepend-plain", bytes([2 | (0 << 2)]) + b"\x02" + two)
write("batch_decode", "prepend-control", bytes([2 | (0x30 << 2) & 0xFF]) + b"\x01"
      + record(0, b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x07"))
write("batch_decode", "prepend-gzip", bytes([2 | (1 << 2)]) + b"\x03" + fixture("gzip.bin")[61:])
write("batch_decode", "prepend-zstd-then-raw", bytes([3 | (4 << 2)]) + b"\x03" + fixture("zstd.bin")[61:])


# snapshot_decode: mode byte, then bytes (harness/snapshot.rs).
def entry(pid, epoch, last_seq, last_off, delta, ts, coord, txn):
    return struct.pack(">qhiqiqiq", pid, epoch, last_seq, last_off, delta, ts, coord, txn)


def snapshot(entries, trailer=b""):
    body = struct.pack(">i", len(entries)) + b"".join(entries) + trailer
    return struct.pack(">hI", 1, crc32c(body)) + body


e1 = entry(1, 0, 9, 19, 1, 1000, -1, -1)
e2 = entry(2, 3, 4, 30, 0, 1001, 2, 25)
e3 = entry(3, 0, -1, -1, 0, 900, -1, -1)
window = b"EOSLOGW1" + struct.pack(">i", 1) + struct.pack(">qh", 1, 2) \
    + struct.pack(">iqiq", 7, 17, 1, 999) + struct.pack(">iqiq", 9, 19, 1, 1000)
write("snapshot_decode", "empty", b"\x00" + snapshot([]))
write("snapshot_decode", "kafka-entries", b"\x00" + snapshot([e1, e2, e3]))
write("snapshot_decode", "with-window", b"\x00" + snapshot([e1, e2], window))
write("snapshot_decode", "body-with-window", b"\x01" + snapshot([e1, e2], window)[6:])
write("snapshot_decode", "body-one-entry", b"\x01" + snapshot([e2])[6:])
unreplicated = b"EOSLOGU1" + struct.pack(">i", 2) + struct.pack(">qq", 3, 8) + struct.pack(">qq", 5, 6)
write("snapshot_decode", "with-window-and-unreplicated", b"\x00" + snapshot([e1, e2], window + unreplicated))
write("snapshot_decode", "body-unreplicated", b"\x01" + snapshot([e3], unreplicated)[6:])


# index_files: flags, then edits of kind|segment|mode|at(u16)|len + data (harness/index_files.rs).
def edit(kind, segment, mode, at, data):
    assert 0 < len(data) < 256
    return bytes([kind, segment, mode]) + struct.pack(">H", at) + bytes([len(data)]) + data


write("index_files", "clean", b"\x00")
write("index_files", "recover", b"\x01")
write("index_files", "recover-no-checkpoint", b"\x03")
write("index_files", "index-overwrite", b"\x00" + edit(0, 0, 1, 8, b"\xff\xff\xff\x7f\x00\x00\x00\x00"))
write("index_files", "timeindex-append", b"\x01" + edit(1, 1, 2, 0, struct.pack(">qi", 1_700_000_000_000, 3)))
write("index_files", "txnindex-entry", b"\x00" + edit(2, 0, 2, 0, struct.pack(">hqqqq", 0, 2, 1, 4, 4)))
write("index_files", "snapshot-cut", b"\x00" + edit(3, 0, 3, 20, b"\x00"))
write("index_files", "epochs", b"\x00" + edit(4, 0, 0, 0, b"0\n3\n0 0\n1 5\n7 2\n"))
write("index_files", "checkpoint", b"\x00" + edit(5, 0, 0, 0, b"eoslog-checkpoint 0\nrecovery_point 12\nlog_start_offset 0\nrecovery_position 0 400\n"))
write("index_files", "log-tail", b"\x01" + edit(6, 1, 3, 300, b"\x00\x00\x00\x00\x00\x00\x00\x20\x00\x00\x00\x40"))
write("index_files", "new-segment", b"\x01" + edit(7, 0, 0, 5, batch(two, 2)))
write("index_files", "two-edits", b"\x01" + edit(0, 1, 0, 0, b"\x00" * 16) + edit(2, 1, 3, 10, b"\x01\x02"))


# log_model: arbitrary's encoding of Vec<FuzzOp> (fuzz_targets/log_model.rs): each element is
# preceded by a "keep going" byte (odd = one more element); an enum tag is a little-endian u32
# mapped to a variant by (tag * 10) >> 32 (take the middle of each range); then the fields.
def op(variant, fields=b""):
    tag = ((variant << 32) + (1 << 31)) // 10
    return b"\x01" + struct.pack("<I", tag) + fields


APPEND, MARKER, ROLL, REOPEN, CRASH, TRUNCATE, TRUNCATE_FULLY, SET_HW, DELETE_RECORDS, RETENTION = range(10)


def append(pid, txn, n, seq_choice, epoch_delta):
    return op(APPEND, bytes([pid, int(txn), n, seq_choice, epoch_delta & 0xFF]))


def mark(pid, commit, epoch_delta=0, coord_delta=0):
    return op(MARKER, bytes([pid, int(commit), epoch_delta & 0xFF, coord_delta & 0xFF]))


write("log_model", "idempotent-retry", append(0, False, 2, 0, 0) + append(0, False, 2, 1, 0)
      + append(1, False, 1, 0, 0) + op(REOPEN) + append(0, False, 2, 2, 0))
write("log_model", "txn-abort-commit", append(1, True, 2, 0, 0) + append(2, True, 1, 0, 0)
      + mark(1, False) + mark(2, True) + append(1, True, 1, 0, 0) + mark(1, True))
write("log_model", "fence-and-roll", append(1, True, 3, 0, 0) + op(ROLL) + mark(1, False, 1, 1)
      + append(1, True, 1, 0, -1) + append(1, False, 1, 0, 1))
write("log_model", "crash-truncate", append(0, False, 3, 0, 0) + append(2, True, 2, 0, 0)
      + op(CRASH, struct.pack("<H", 5)) + op(TRUNCATE, b"\x01") + append(0, False, 1, 0, 0)
      + op(TRUNCATE_FULLY) + append(0, False, 1, 0, 0))
write("log_model", "hw-retention", append(2, False, 1, 0, 0) + append(2, False, 1, 0, 0) + op(ROLL)
      + append(1, True, 1, 0, 0) + op(SET_HW, b"\x00") + mark(1, True) + op(ROLL)
      + append(0, False, 1, 0, 0) + op(DELETE_RECORDS, b"\x01") + op(RETENTION) + op(REOPEN)
      + op(SET_HW, b"\x00") + op(CRASH, struct.pack("<H", 3)) + append(2, False, 1, 1, 0))
