"""Just enough of the Kafka wire format, written with `struct`, to speak ApiVersions on a raw
socket (test_api_versions.py). All integers are big-endian.

Request frame:  int32 size | int16 api_key | int16 api_version | int32 correlation_id |
                string client_id (int16 length) | [header v2: tagged fields] | body
Response frame: int32 size | int32 correlation_id | body   (ApiVersions responses always use
                response header v0, even at flexible versions)
"""

import socket
import struct

API_VERSIONS = 18


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_uvarint(buf, pos):
    shift = 0
    n = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, pos
        shift += 7
        if shift > 35:
            raise ValueError("varint too long")


def compact_string(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


def request_header(api_key, version, correlation_id, client_id, flexible):
    cid = client_id.encode()
    h = struct.pack(">hhih", api_key, version, correlation_id, len(cid)) + cid
    if flexible:
        h += uvarint(0)  # no tagged fields
    return h


def api_versions_request(version, correlation_id, client_id="eoslog-raw",
                         software=("eoslog-raw", "1.0")):
    """An ApiVersions request frame. Versions >= 3 (and any unknown higher version) use the
    flexible header and the v3 body (client software name and version)."""
    flexible = version >= 3
    body = b""
    if flexible:
        body = compact_string(software[0]) + compact_string(software[1]) + uvarint(0)
    payload = request_header(API_VERSIONS, version, correlation_id, client_id, flexible) + body
    return struct.pack(">i", len(payload)) + payload


def read_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def read_frame(sock):
    (size,) = struct.unpack(">i", read_exact(sock, 4))
    if size < 4 or size > 10 * 1024 * 1024:
        raise ValueError("implausible frame size %d" % size)
    return read_exact(sock, size)


def parse_api_versions_v0(frame):
    """(correlation_id, error_code, {api_key: (min, max)}) of a v0-format response; raises if
    bytes are left over."""
    corr, err, n = struct.unpack_from(">ihi", frame, 0)
    pos = 10
    if n < 0:
        raise ValueError("negative array length %d" % n)
    keys = {}
    for _ in range(n):
        k, lo, hi = struct.unpack_from(">hhh", frame, pos)
        pos += 6
        keys[k] = (lo, hi)
    if pos != len(frame):
        raise ValueError("%d bytes left after a v0 ApiVersions response" % (len(frame) - pos))
    return corr, err, keys


def skip_tagged_fields(frame, pos):
    count, pos = read_uvarint(frame, pos)
    for _ in range(count):
        _tag, pos = read_uvarint(frame, pos)
        size, pos = read_uvarint(frame, pos)
        pos += size
        if pos > len(frame):
            raise ValueError("truncated tagged field")
    return pos


def parse_api_versions_v3(frame):
    """(correlation_id, error_code, {api_key: (min, max)}, throttle_ms) of a v3/v4 response."""
    corr, err = struct.unpack_from(">ih", frame, 0)
    pos = 6
    n1, pos = read_uvarint(frame, pos)
    if n1 == 0:
        raise ValueError("null api_keys array")
    keys = {}
    for _ in range(n1 - 1):
        k, lo, hi = struct.unpack_from(">hhh", frame, pos)
        pos += 6
        pos = skip_tagged_fields(frame, pos)
        keys[k] = (lo, hi)
    (throttle,) = struct.unpack_from(">i", frame, pos)
    pos += 4
    pos = skip_tagged_fields(frame, pos)
    if pos != len(frame):
        raise ValueError("%d bytes left after a v3 ApiVersions response" % (len(frame) - pos))
    return corr, err, keys, throttle


def connect(bootstrap, timeout=10.0):
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.settimeout(timeout)
    return s
