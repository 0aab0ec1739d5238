#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into tests/fuzz/<target>/.

Small, valid examples of what each target parses (plus a few classic
malformed ones), so the fuzzers start from inputs that reach deep code.
The server targets fix checksums themselves (tests/fuzz/fuzz_server.c), so
frames here carry csum 0.  Run it again after changing the wire format:
    tests/fuzz/make_corpus.py
"""
import os
import struct
import sys

MAGIC = 0x314F4655
HELLO, AUTH, CREATE, OPEN, STAT, LIST, DELETE, READ, WRITE, SYNC, PING, MAP, \
    COMMIT, VWRITE, VERSIONS, DISCARD, NODE, PLACE, PLACEMENT, HINTS, \
    HINTS_DROP, UNMAP = range(1, 23)
RESPONSE = 0x8000
SEED_ID = 1  # the harness's seed object: the first id a fresh store hands out
FLAG_KEEP_CSUM, FLAG_FIX_AUTH = 1, 2

req_ids = iter(range(1, 1 << 30))


# The version a login agrees on (HELLO 1..VERSION): every frame after it.
VERSION = 3


def frame(op, payload=b"", version=VERSION, status=0, req_id=None, csum=0):
    rid = next(req_ids) if req_id is None else req_id
    return struct.pack("<IHHQIIQ", MAGIC, version, op, rid, status,
                       len(payload), csum) + payload


def hello(lo=1, hi=VERSION, nonce=b"\x11" * 32):
    return struct.pack("<HHI", lo, hi, 0) + nonce


def name(n):
    return struct.pack("<HHHH", len(n), 0, 0, 0) + n


def create(n, size=1 << 20, chunk=65536, flags=0):
    return struct.pack("<QIHH", size, chunk, len(n), flags) + n


def io(obj, off, length, flags=0):
    return struct.pack("<QQII", obj, off, length, flags)


def unmap(obj, off, length, rkey):
    return struct.pack("<QQII", obj, off, length, rkey)


def lst(cursor=0, mx=16):
    return struct.pack("<QII", cursor, mx, 0)


def vio(obj, off, length, version, epoch=0, flags=0, node=b"\0" * 16):
    return struct.pack("<QQIIQQ", obj, off, length, flags, version,
                       epoch) + node


def vq(obj, off, count):
    return struct.pack("<QQII", obj, off, count, 0)


def placement(obj, epoch, group, r, w, nodes):
    return struct.pack("<QQIBBH", obj, epoch, group, r, w, len(nodes)) + \
        b"".join(nodes)


HANDSHAKE = frame(HELLO, hello(), version=0) + frame(AUTH, b"\0" * 32)

handshake = {
    "login_ping": bytes([FLAG_FIX_AUTH]) + HANDSHAKE + frame(PING),
    "login_stat": bytes([FLAG_FIX_AUTH]) + HANDSHAKE +
    frame(STAT, name(b"seed")),
    "wrong_mac": bytes([0]) + HANDSHAKE + frame(PING),
    "hello_only": bytes([0]) + frame(HELLO, hello(), version=0),
    "hello_new_client": bytes([0]) + frame(HELLO, hello(1, 9), version=0),
    "hello_no_overlap": bytes([0]) + frame(HELLO, hello(VERSION + 1, VERSION + 2),
                                           version=0),
    "hello_v1_client": bytes([FLAG_FIX_AUTH]) +
    frame(HELLO, hello(1, 1), version=0) + frame(AUTH, b"\0" * 32, version=1) +
    frame(READ, io(SEED_ID, 0, 64, flags=1), version=1),
    "auth_first": bytes([0]) + frame(AUTH, b"\0" * 32, version=0),
    "ping_first": bytes([0]) + frame(PING, version=0),
    "hello_twice": bytes([FLAG_FIX_AUTH]) + frame(HELLO, hello(), version=0) +
    frame(HELLO, hello(), version=VERSION),
    "short_hello": bytes([0]) + frame(HELLO, b"\1\0\1\0", version=0),
    "big_preauth": bytes([0]) + frame(HELLO, b"\0" * 200, version=0),
    "bad_csum": bytes([FLAG_KEEP_CSUM]) + frame(HELLO, hello(), version=0,
                                                csum=1),
    "http": bytes([0]) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
}

request = {
    "create_stat_delete": frame(CREATE, create(b"obj-a")) +
    frame(STAT, name(b"obj-a")) + frame(OPEN, name(b"obj-a")) +
    frame(LIST, lst()) + frame(DELETE, name(b"obj-a")),
    "write_read_sync": frame(WRITE, io(SEED_ID, 4096, 16) + b"x" * 16) +
    frame(SYNC, struct.pack("<Q", SEED_ID)) +
    frame(READ, io(SEED_ID, 0, 8192)),
    "read_big": frame(READ, io(SEED_ID, 0, 1 << 20)),
    # version 2: a READ asking for holes (answered with a hole on the
    # seed object's unwritten tail), and unknown I/O flags
    "read_holes": frame(READ, io(SEED_ID, 0, 8192, flags=1)) +
    frame(READ, io(SEED_ID, 65536, 4096, flags=1)),
    "read_bad_flags": frame(READ, io(SEED_ID, 0, 4096, flags=6)) +
    frame(WRITE, io(SEED_ID, 0, 8, flags=1) + b"w" * 8),
    "read_wrap": frame(READ, io(SEED_ID, (1 << 64) - 16, 4096)),
    "write_past": frame(WRITE, io(SEED_ID, 1 << 20, 8) + b"y" * 8),
    "sync_zero": frame(SYNC, struct.pack("<Q", 0)),
    "list_cursor": frame(LIST, lst(SEED_ID + 1, 256)),
    "map_commit": frame(MAP, io(SEED_ID, 0, 4096)) +
    frame(COMMIT, io(SEED_ID, 0, 4096)),
    "map_unmap": frame(MAP, io(SEED_ID, 0, 4096)) +
    frame(UNMAP, unmap(SEED_ID, 0, 4096, 0x1234)) +
    frame(UNMAP, unmap(SEED_ID, 0, 4096, 0x1234)[:20]) +
    frame(COMMIT, io(SEED_ID, 0, 4096)),
    "create_bad": frame(CREATE, create(b"../x")) +
    frame(CREATE, create(b"big", size=1 << 60)) +
    frame(CREATE, create(b"c", chunk=1000)),
    "name_lie": frame(STAT, struct.pack("<HHHH", 200, 0, 0, 0) + b"seed"),
    "ping": frame(PING) + frame(PING, b"x"),
    "hello_again": frame(HELLO, hello()),
    "bad_magic": struct.pack("<IHHQIIQ", 0x12345678, 1, PING, 1, 0, 0, 0),
    "truncated": frame(STAT, name(b"seed"))[:40],
    # Replicated objects (docs/cluster.md): the seed object's chunk size is
    # 64 KiB, its placement epoch 0.
    "vwrite_versions": frame(VWRITE, vio(SEED_ID, 0, 65536, 7) + b"v" * 65536) +
    frame(VERSIONS, vq(SEED_ID, 0, 4)) +
    frame(DISCARD, vio(SEED_ID, 0, 65536, 7)) + frame(NODE),
    "vwrite_hint": frame(VWRITE, vio(SEED_ID, 65536, 65536, 9, flags=1,
                                     node=b"\xab" * 16) + b"h" * 65536) +
    frame(HINTS, struct.pack("<QQ", SEED_ID, 0)) +
    frame(HINTS_DROP, struct.pack("<QQ", SEED_ID, 1) + b"\0" * 16),
    "place": frame(PLACE, placement(SEED_ID, 1, 1 << 22, 2, 2,
                                    [b"\1" * 16, b"\2" * 16])) +
    frame(PLACEMENT, struct.pack("<Q", SEED_ID)) +
    frame(VWRITE, vio(SEED_ID, 0, 65536, 11, epoch=1) + b"p" * 65536) +
    frame(WRITE, io(SEED_ID, 0, 8) + b"w" * 8),
}
request = {k: bytes([0]) + v for k, v in request.items()}
request["bad_csum"] = bytes([FLAG_KEEP_CSUM]) + frame(PING, b"", csum=5)

srv_nonce = b"\x22" * 32
frames = {
    # What a client reads during its handshake: the server's HELLO and AUTH.
    "server_handshake": frame(HELLO | RESPONSE,
                              hello(VERSION, VERSION, srv_nonce),
                              version=VERSION, req_id=1) +
    frame(AUTH | RESPONSE, b"\x33" * 32, req_id=2),
    "server_refusal": frame(HELLO | RESPONSE, b"over 2 connections",
                            version=0, req_id=0, status=11),
    "server_eauth": frame(HELLO | RESPONSE,
                          hello(VERSION, VERSION, srv_nonce), req_id=1) +
    frame(AUTH | RESPONSE, b"wrong secret", req_id=2, status=3),
    "name_payload": name(b"some-object.v2"),
    "create_payload": create(b"obj_1", size=1 << 40, chunk=1 << 20),
    "request_stat": frame(STAT, name(b"seed")),
    "valid_name": b"object-name_1.data",
}

config = {
    "full": b"# server\nlisten = 0.0.0.0:7070\ndata = /var/lib/ufo\n"
            b"secret-file = /etc/ufo/secret\nmax-connections = 4096\n"
            b"workers = 4\nlog-level = debug\nmonitor = 9170\n"
            b"auth-timeout-ms = 5000\ntls-cert = /etc/ufo/cert.pem\n"
            b"tls-key = /etc/ufo/key.pem\n\0"
            b"--listen=[::1]:0\n--workers\n8\n--monitor\n127.0.0.1:0\n"
            b"ufo://[::1]:7070/name\ntls://example.com/x\n",
    "flags_only": b"\0--data\n/tmp/d\n--secret-file\n/tmp/s\n--monitor=on\n"
                  b"tcp://host:1/obj\n",
    "secret_value": b"data = /d\nsecret = hunter2hunter2hunter2\n\0"
                    b"--secret\nabc\n",
    "bad_values": b"listen = :99999\nmax-connections = 0\nworkers = -1\n"
                  b"nokey\n\0--monitor\n[::1]:\n--help\n",
    "env_sizes": b"\0" + b"4G\n1KiB\n2\nwp\n2q\n5\n10\n127.0.0.1:0\nwarn\n",
}

monitor = {
    "get_metrics": b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   b"Accept: text/plain\r\n\r\n",
    "get_stats": b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\n\r\n",
    "get_index": b"GET / HTTP/1.0\r\n\r\n",
    "head_chart": b"HEAD /chart.js HTTP/1.1\r\nHost: x\r\n\r\n",
    "post": b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"\r\nhello",
    "not_found": b"GET /../../etc/passwd?x=%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "pipelined": b"GET /dashboard.js HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
    "chunked": b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"\r\n5\r\nhello\r\n0\r\n\r\n",
    # an empty line before the request line is skipped (RFC 9112 2.2): a
    # GET all the same (the harness once took "\nGET" for a method)
    "leading_empty_line": b"\nGET /api/v1/stats HTTP/1.1\r\nHot: x\r\n\r\n",
}


# fuzz_codec: each message decoder reads the input as its message.
codec = {
    "hdr": frame(READ, io(SEED_ID, 0, 4096))[:32],
    "hello": hello(),
    "create": create(b"seed"),
    "io": io(SEED_ID, 4096, 65536, 1),
    "unmap": unmap(SEED_ID, 4096, 65536, 0xabcd),
    "vio": vio(SEED_ID, 0, 65536, 7, 1, 1, b"\x22" * 16),
    "placement": placement(SEED_ID, 1, 1 << 20, 2, 1, [b"\x01" * 16,
                                                        b"\x02" * 16]),
    "versions": bytes([3]) + struct.pack("<QQQ", 1, 2, 3),
    "short": b"\x55\x46",
}


# fuzz_hs: records of [flags][len LE16][header + payload]; the first byte
# picks the role (0 server, 1 client).
HS_FIX_LEN, HS_FIX_CSUM, HS_FIX_MAC, HS_EARLY = 1, 2, 4, 8


def hs_record(flags, op, payload, version=0, status=0, req_id=1):
    f = frame(op, payload, version=version, status=status, req_id=req_id)
    return bytes([flags]) + struct.pack("<H", len(f)) + f


FIX = HS_FIX_LEN | HS_FIX_CSUM
hs = {
    "server_login": b"\0" + hs_record(FIX | HS_EARLY, HELLO, hello())
    + hs_record(FIX | HS_FIX_MAC | HS_EARLY, AUTH, b"\0" * 32,
                version=VERSION, req_id=2),
    "server_wrong_mac": b"\0" + hs_record(FIX, HELLO, hello())
    + hs_record(FIX, AUTH, b"\0" * 32, version=VERSION, req_id=2),
    "server_auth_first": b"\0" + hs_record(FIX, AUTH, b"\0" * 32),
    "server_v1": b"\0" + hs_record(FIX, HELLO, hello(1, 1)),
    "client_login": b"\1" + hs_record(FIX, HELLO | RESPONSE, hello(2, 2), 2)
    + hs_record(FIX | HS_FIX_MAC, AUTH | RESPONSE, b"\0" * 32, 2, req_id=2),
    "client_login_v3": b"\1" + hs_record(FIX, HELLO | RESPONSE,
                                          hello(VERSION, VERSION), VERSION)
    + hs_record(FIX | HS_FIX_MAC, AUTH | RESPONSE, b"\0" * 32, VERSION,
                req_id=2),
    "client_busy": b"\1" + hs_record(FIX, HELLO | RESPONSE, b"busy",
                                      status=11),
}


def write(target, seeds):
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), target)
    os.makedirs(d, exist_ok=True)
    for k, v in seeds.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(v)


def main():
    write("fuzz_handshake", handshake)
    write("fuzz_request", request)
    write("fuzz_frame", frames)
    write("fuzz_config", config)
    write("fuzz_monitor", monitor)
    write("fuzz_codec", codec)
    write("fuzz_hs", hs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
