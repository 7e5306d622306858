#!/usr/bin/env python3
"""Writes the seed corpora for fuzz_frame_decode, fuzz_ring, fuzz_protocol and
fuzz_async_channel (see the input formats described at the top of each tools/fuzz/fuzz_*.cc).

    tools/fuzz/make_ipc_seeds.py   # from the repository root; rewrites
                                   # tests/fuzz/{frame_decode,ring,protocol,async_channel}/
"""
import os
import re
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

# The handshake's VM version must be the engine's (engine::kVmVersion), or every connection
# seed stops at the version check.
with open(os.path.join(ROOT, "engine", "include", "shapex", "engine", "blob.h")) as header:
    VM_VERSION = int(re.search(r"kVmVersion = (\d+);", header.read()).group(1))


def frame(ftype, call_id, payload):
    return struct.pack("<IBQ", len(payload), ftype, call_id) + payload


def write(directory, name, data):
    path = os.path.join(ROOT, "tests", "fuzz", directory, name)
    with open(path, "wb") as f:
        f.write(data)


def frame_seeds():
    # Prefix: split seed, max payload (LE u16; the fuzzer uses 1 + value % 4096).
    def seed(split, max_payload, stream):
        return bytes([split]) + struct.pack("<H", max_payload - 1) + stream

    three = frame(1, 1, b"hello") + frame(2, 0, b"") + frame(3, 2**64 - 1, bytes(range(200)))
    write("frame_decode", "three_frames", seed(7, 4096, three))
    write("frame_decode", "byte_splits", seed(0, 4096, three * 3))
    write("frame_decode", "max_payload_exact", seed(3, 64, frame(9, 9, b"x" * 64)))
    write("frame_decode", "oversize_header", seed(5, 64, frame(1, 1, b"ok") + frame(9, 9, b"x" * 65)))
    write("frame_decode", "huge_length", seed(11, 4096, struct.pack("<IBQ", 0xFFFFFFFF, 1, 1)))
    write("frame_decode", "truncated", seed(13, 4096, frame(4, 4, b"abcdef")[:-2]))
    write("frame_decode", "header_only", seed(17, 4096, frame(4, 4, b"")[:7]))
    write("frame_decode", "many_empty", seed(19, 4096, b"".join(frame(i, i, b"") for i in range(40))))


MAGIC, VERSION, CAPACITY = 0x47525853, 1, 256
REQUEST, RESPONSE, DATA = 64, 320, 1024


def ring_image(request=(0, 0), response=(0, 0), request_data=b"", response_data=b""):
    image = bytearray(DATA + 2 * CAPACITY)
    struct.pack_into("<III", image, 0, MAGIC, VERSION, CAPACITY)
    for control, (head, tail) in ((REQUEST, request), (RESPONSE, response)):
        struct.pack_into("<Q", image, control, head % 2**64)
        struct.pack_into("<Q", image, control + 64, tail % 2**64)
    image[DATA:DATA + len(request_data)] = request_data
    image[DATA + CAPACITY:DATA + CAPACITY + len(response_data)] = response_data
    return bytes(image)


def records(*payloads):
    out = b""
    for p in payloads:
        rec = struct.pack("<I", len(p)) + p
        out += rec + b"\0" * (-len(rec) % 8)
    return out


def ring_seed(flags, image):
    # Flag bit 1 clear: the fuzzer keeps its own header and copies input from offset 16.
    return bytes([flags]) + (image if flags & 2 else image[16:])


def ring_seeds():
    data = records(b"abc", b"", bytes(range(100)))
    n = len(data)
    write("ring", "empty_server", ring_seed(0, ring_image()))
    write("ring", "empty_client", ring_seed(1, ring_image()))
    write("ring", "three_requests", ring_seed(0, ring_image(request=(n, 0), request_data=data)))
    write("ring", "three_responses", ring_seed(1, ring_image(response=(n, 0), response_data=data)))
    write("ring", "with_header", ring_seed(2, ring_image(request=(n, 0), request_data=data)))
    # A record wrapping around the end of the data area.
    rec = records(bytes(range(60)))
    start = CAPACITY - 24
    wrapped = bytearray(CAPACITY)
    for i, b in enumerate(rec):
        wrapped[(start + i) % CAPACITY] = b
    base = 2**64 - 2 * CAPACITY + start
    write("ring", "wrapped_near_2_64",
          ring_seed(0, ring_image(request=(base + len(rec), base), request_data=bytes(wrapped))))
    write("ring", "head_beyond_capacity", ring_seed(0, ring_image(request=(CAPACITY + 8, 0))))
    write("ring", "length_too_big",
          ring_seed(0, ring_image(request=(8, 0), request_data=struct.pack("<I", 1000))))
    write("ring", "tail_ahead_of_head", ring_seed(0, ring_image(response=(0, 16))))
    write("ring", "unaligned_tail", ring_seed(0, ring_image(request=(12, 4))))


def protocol_seeds():
    def hs(proto=1, vm=VM_VERSION, flags=0, max_payload=64 << 20):
        return struct.pack("<IIIIII", 0x48585853, proto, vm, flags, max_payload, 0)

    def table(fd_count, slices):
        return struct.pack("<BI", fd_count, len(slices)) + b"".join(
            struct.pack("<IQQ", *s) for s in slices)

    hello = frame(0x01, 0, hs())
    seeds = {
        "handshake": b"\x00" + hs(),
        "handshake_ring": b"\x00" + hs(flags=1),
        "handshake_bad_magic": b"\x00" + bytes(24),
        "fdtable_one": b"\x01" + table(1, [(0, 0, 16)]) + b"msg",
        "fdtable_three": b"\x01" + table(3, [(0, 0, 16), (2, 64, 128), (1, 0, 0)]),
        "fdtable_zero": b"\x01" + table(0, []),
        "conn_hello_only": b"\x02" + hello,
        "conn_hello_messages": b"\x02" + hello + frame(0x10, 1, b"\x92\x01\x03")
                               + frame(0x20, 1, b"") + frame(0x30, 0, b""),
        "conn_bad_version": b"\x02" + frame(0x01, 0, hs(proto=9)),
        "conn_fds_missing": b"\x02" + hello + frame(0x11, 2, table(1, [(0, 0, 8)]) + b"\x90"),
        "conn_oversize": b"\x02" + hello + struct.pack("<IBQ", 0x7FFFFFFF, 0x10, 1),
    }
    os.makedirs(os.path.join(ROOT, "tests", "fuzz", "protocol"), exist_ok=True)
    for name, data in seeds.items():
        write("protocol", name, data)


def control(op, ints=(), texts=(), hashes=(), blobs=()):
    """A control message ([op, ints, texts, hashes, blobs]) in msgpack, small cases only."""
    def s(text):
        b = text.encode()
        return bytes([0xa0 | len(b)]) + b if len(b) < 32 else b"\xd9" + bytes([len(b)]) + b

    def arr(items):
        return bytes([0x90 | len(items)]) + b"".join(items)

    def i(v):
        return bytes([v]) if 0 <= v < 128 else b"\xd3" + struct.pack(">q", v)

    def b(raw):
        return b"\xc4" + bytes([len(raw)]) + raw

    return arr([s(op), arr([arr([s(k), i(v)]) for k, v in ints]),
                arr([arr([s(k), s(v)]) for k, v in texts]), arr([b(h) for h in hashes]),
                arr([b(x) for x in blobs])])


def async_channel_seeds():
    hs = struct.pack("<IIIIII", 0x48585853, 1, VM_VERSION, 0, 64 << 20, 0)
    hello = frame(0x01, 0, hs)
    msg = lambda m: frame(0x10, 0, m)
    seeds = {
        "hello_status": hello + msg(control("status")),
        "hello_lease_hashes": hello + msg(control("lease", ints=[("wait", 1)],
                                                  hashes=[bytes(32), bytes([7]) * 32])),
        "hello_many": hello + b"".join(msg(control(op)) for op in
                                       ["status", "stop", "kill", "release", "lease", "nope"]),
        "half_hello": hello[:7],
        "ring_offer": frame(0x01, 0, struct.pack("<IIIIII", 0x48585853, 1, VM_VERSION, 1, 1 << 20, 0)),
        "bad_version": frame(0x01, 0, struct.pack("<IIIIII", 0x48585853, 9, VM_VERSION, 0, 1 << 20, 0)),
        "message_first": msg(control("status")),
        "oversize": hello + struct.pack("<IBQ", 0x7FFFFFFF, 0x10, 0),
        "fds_announced": hello + frame(0x11, 0, struct.pack("<BI", 1, 0) + control("serve")),
        "goodbye": hello + frame(0x30, 0, b""),
    }
    os.makedirs(os.path.join(ROOT, "tests", "fuzz", "async_channel"), exist_ok=True)
    for name, data in seeds.items():
        write("async_channel", name, data)


if __name__ == "__main__":
    frame_seeds()
    ring_seeds()
    protocol_seeds()
    async_channel_seeds()
