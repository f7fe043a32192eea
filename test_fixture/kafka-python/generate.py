#!/usr/bin/env python3
"""Write real-client RecordBatch v2 fixtures with kafka-python's own batch writer.

Every case is built with ``kafka.record.default_records.DefaultRecordBatchBuilder``
(the code kafka-python's producer uses to frame a produce request), written as
``<case>.bin`` (the raw batch bytes, exactly as ``build()`` returned them), and
described in ``expected.json``.

The expected values are the inputs given to the builder plus the header fields
read back from the bytes; the script checks both against kafka-python's own
reader (``DefaultRecordBatch``) and stops if they disagree.

Usage (from anywhere):

    pip install kafka-python python-snappy lz4 zstandard
    python3 test_fixture/kafka-python/generate.py

Timestamps and payloads are fixed, so every file is reproducible except
``gzip.bin``: Python's gzip module writes the current time into the gzip
header's MTIME field, so that file (and its CRC in expected.json) changes on
each run.
"""

import json
import os
import random
import struct
import sys

import kafka
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.util import calc_crc32c

HERE = os.path.dirname(os.path.abspath(__file__))

# Cases whose record values are described by length and CRC-32C instead of hex,
# to keep the fixture small (1000 x 1 KiB values would be 2 MB of hex).
VALUES_AS_CRC = {"lz4_large"}

# Fixed CreateTime timestamps (ms since the epoch).
T0 = 1_700_000_000_000

CODECS = {
    "none": DefaultRecordBatch.CODEC_NONE,
    "gzip": DefaultRecordBatch.CODEC_GZIP,
    "snappy": DefaultRecordBatch.CODEC_SNAPPY,
    "lz4": DefaultRecordBatch.CODEC_LZ4,
    "zstd": DefaultRecordBatch.CODEC_ZSTD,
}
CODEC_NAMES = {v: k for k, v in CODECS.items()}

# Big-endian v2 header, as in section 1.1 of the reference.
HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_FIELDS = (
    "base_offset",
    "batch_length",
    "partition_leader_epoch",
    "magic",
    "crc",
    "attributes",
    "last_offset_delta",
    "base_timestamp",
    "max_timestamp",
    "producer_id",
    "producer_epoch",
    "base_sequence",
    "record_count",
)


def three_records():
    """Three records: one with a null key, one with a null value, one with 2 headers.

    The values repeat text so that every codec shrinks the records area:
    kafka-python sends a batch uncompressed (codec bits 0) when compression
    does not make it smaller.
    """
    filler = b"the quick brown fox jumps over the lazy dog; " * 4
    return [
        (T0, None, b"value-0 " + filler, []),
        (T0 + 5, b"key-1", None, []),
        (
            T0 + 12,
            b"key-2",
            b"value-2 " + filler,
            [("trace-id", b"\x00\x01\x02\x03abc"), ("empty-or-null", None)],
        ),
    ]


def idempotent_records():
    return [
        (T0 + 100 + i, b"idem-key-%d" % i, b"idem-value-%d" % i, [])
        for i in range(5)
    ]


def transactional_records():
    return [
        (T0 + 200, b"txn-key-0", b"txn-value-0", [("h", b"v")]),
        (T0 + 201, b"txn-key-1", b"txn-value-1", []),
    ]


def big_lz4_records():
    """1000 records with 1 KiB values: ~1 MiB of records, 16+ lz4 blocks of 64 KiB.

    Each value is mostly repeated text with 96 pseudo-random bytes, so lz4
    shrinks it well (the fixture stays small) but not to nothing.
    """
    rng = random.Random(20240601)
    records = []
    for i in range(1000):
        noise = bytes(rng.getrandbits(8) for _ in range(96))
        text = (b"record %04d of the big lz4 batch | " % i) * 30
        value = (noise + text)[:1024]
        assert len(value) == 1024
        # Timestamps not monotonic on purpose: max_timestamp != last timestamp.
        ts = T0 + 1000 + (i * 7919) % 1000
        records.append((ts, b"big-%04d" % i, value, []))
    return records


def empty_records():
    return [(T0 + 300, b"", b"", [])]


CASES = [
    # name, codec, producer_id, producer_epoch, base_sequence, is_transactional, records
    ("uncompressed", "none", -1, -1, -1, False, three_records()),
    ("gzip", "gzip", -1, -1, -1, False, three_records()),
    ("snappy", "snappy", -1, -1, -1, False, three_records()),
    ("lz4", "lz4", -1, -1, -1, False, three_records()),
    ("zstd", "zstd", -1, -1, -1, False, three_records()),
    ("idempotent", "none", 1000, 3, 7, False, idempotent_records()),
    ("transactional", "none", 42, 0, 0, True, transactional_records()),
    ("lz4_large", "lz4", -1, -1, -1, False, big_lz4_records()),
    ("empty_key_value", "none", -1, -1, -1, False, empty_records()),
]


def hex_or_null(b):
    return None if b is None else bytes(b).hex()


def build(codec, producer_id, producer_epoch, base_sequence, is_transactional, records):
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=CODECS[codec],
        is_transactional=is_transactional,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        batch_size=16 * 1024 * 1024,
    )
    for offset, (ts, key, value, headers) in enumerate(records):
        meta = builder.append(offset, timestamp=ts, key=key, value=value, headers=headers)
        if meta is None:
            sys.exit("builder refused record %d" % offset)
    return bytes(builder.build())


def uncompressed_records_area(records):
    """The records area kafka-python wrote before compressing it."""
    data = build("none", -1, -1, -1, False, records)
    return data[HEADER.size:]


def check_with_reader(data, header, records):
    """Read the bytes back with kafka-python's own reader and compare."""
    batch = DefaultRecordBatch(data)
    if not batch.validate_crc():
        sys.exit("kafka-python reports a bad CRC")
    assert batch.base_offset == header["base_offset"]
    assert batch.last_offset_delta == header["last_offset_delta"]
    assert batch.producer_id == header["producer_id"]
    assert batch.producer_epoch == header["producer_epoch"]
    assert batch.base_sequence == header["base_sequence"]
    assert batch.is_transactional == header["is_transactional"]
    assert CODEC_NAMES[batch.compression_type] == header["compression"]
    got = list(batch)
    assert len(got) == len(records)
    for rec, (offset, (ts, key, value, headers)) in zip(got, enumerate(records)):
        assert rec.offset == offset, (rec.offset, offset)
        assert rec.timestamp == ts, (rec.timestamp, ts)
        assert rec.key == key, (rec.key, key)
        assert rec.value == value
        assert [(k, v) for k, v in rec.headers] == headers, rec.headers


def describe(name, codec, data, records):
    fields = dict(zip(HEADER_FIELDS, HEADER.unpack_from(data)))
    attributes = fields["attributes"]
    actual_codec = CODEC_NAMES[attributes & 0x07]
    if actual_codec != codec:
        sys.exit(
            "case %s: asked for %s but kafka-python wrote %s "
            "(it falls back to none when compression does not shrink the batch)"
            % (name, codec, actual_codec)
        )
    if fields["batch_length"] + 12 != len(data):
        sys.exit("case %s: batch_length does not match the bytes" % name)
    header = {
        "base_offset": fields["base_offset"],
        "batch_length": fields["batch_length"],
        "partition_leader_epoch": fields["partition_leader_epoch"],
        "magic": fields["magic"],
        "crc": fields["crc"],
        "attributes": attributes,
        "compression": actual_codec,
        "timestamp_type": "log_append_time" if attributes & 0x08 else "create_time",
        "is_transactional": bool(attributes & 0x10),
        "is_control": bool(attributes & 0x20),
        "last_offset_delta": fields["last_offset_delta"],
        "base_timestamp": fields["base_timestamp"],
        "max_timestamp": fields["max_timestamp"],
        "producer_id": fields["producer_id"],
        "producer_epoch": fields["producer_epoch"],
        "base_sequence": fields["base_sequence"],
        "record_count": fields["record_count"],
    }
    # Header values the inputs determine.
    assert header["record_count"] == len(records)
    assert header["last_offset_delta"] == len(records) - 1
    assert header["base_timestamp"] == records[0][0]
    assert header["max_timestamp"] == max(r[0] for r in records)
    check_with_reader(data, header, records)
    base_ts = header["base_timestamp"]
    plain = uncompressed_records_area(records)
    if codec == "none":
        assert plain == data[HEADER.size:]
    as_crc = name in VALUES_AS_CRC
    out_records = []
    for offset, (ts, key, value, headers) in enumerate(records):
        rec = {
            "offset_delta": offset,
            "timestamp": ts,
            "timestamp_delta": ts - base_ts,
            "key": hex_or_null(key),
        }
        if as_crc:
            rec["value_len"] = None if value is None else len(value)
            rec["value_crc32c"] = None if value is None else calc_crc32c(value)
        else:
            rec["value"] = hex_or_null(value)
        rec["headers"] = [[k, hex_or_null(v)] for k, v in headers]
        out_records.append(rec)
    return {
        "file": name + ".bin",
        "size": len(data),
        "records_area_size": len(data) - HEADER.size,
        # The records area after decompression (equal to the stored one for "none").
        "uncompressed_records_size": len(plain),
        "uncompressed_records_crc32c": calc_crc32c(plain),
        "value_encoding": "len_crc32c" if as_crc else "hex",
        "header": header,
        "records": out_records,
    }


def main():
    out = {
        "generator": "test_fixture/kafka-python/generate.py",
        "kafka_python_version": kafka.__version__,
        "notes": [
            "key, value and header values are lowercase hex, or null for a null field.",
            "Cases with value_encoding len_crc32c give value_len and value_crc32c "
            "(CRC-32C/Castagnoli of the value bytes, unsigned) instead of value.",
            "uncompressed_records_crc32c is the CRC-32C of the decompressed records area.",
            "Header fields are read back from the bytes; crc is the stored batch CRC (unsigned).",
        ],
        "cases": [],
    }
    total = 0
    for name, codec, pid, epoch, seq, txn, records in CASES:
        data = build(codec, pid, epoch, seq, txn, records)
        out["cases"].append(describe(name, codec, data, records))
        with open(os.path.join(HERE, name + ".bin"), "wb") as f:
            f.write(data)
        total += len(data)
        print("%-16s %-6s %8d bytes" % (name, codec, len(data)))
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    total += os.path.getsize(os.path.join(HERE, "expected.json"))
    print("total %d bytes (with expected.json)" % total)


if __name__ == "__main__":
    main()
