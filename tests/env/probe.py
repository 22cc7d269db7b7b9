#!/usr/bin/env python3
"""Readiness probes that speak the servers' own wire protocols (standard library only).

    probe.py kafka HOST:PORT      a Metadata request answered with at least one broker
    probe.py cql HOST:PORT        STARTUP then `SELECT release_version FROM system.local`

Exit 0 when the server answers as a ready one would, 1 otherwise (the reason on stderr).
"""

import socket
import struct
import sys


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        buf += chunk
    return buf


def connect(addr):
    host, port = addr.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=3)


def kafka_ready(addr):
    client_id = b"homestream-probe"
    # Metadata v0 (api key 3): an empty topic array asks for all topics and every broker.
    body = struct.pack(">hhih", 3, 0, 1, len(client_id)) + client_id + struct.pack(">i", 0)
    with connect(addr) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", recv_exact(sock, 4))
        resp = recv_exact(sock, size)
    (_, brokers) = struct.unpack(">ii", resp[:8])
    if brokers < 1:
        raise RuntimeError("metadata lists no broker yet")


def cql_frame(opcode, body):
    return struct.pack(">BBhBi", 0x04, 0, 0, opcode, len(body)) + body


def cql_read(sock):
    header = recv_exact(sock, 9)
    _, _, _, opcode, length = struct.unpack(">BBhBi", header)
    return opcode, recv_exact(sock, length)


def cql_ready(addr):
    def string(s):
        return struct.pack(">H", len(s)) + s

    startup = struct.pack(">H", 1) + string(b"CQL_VERSION") + string(b"3.0.0")
    query = b"SELECT release_version FROM system.local"
    with connect(addr) as sock:
        sock.sendall(cql_frame(0x01, startup))
        opcode, body = cql_read(sock)
        if opcode != 0x02:  # READY
            raise RuntimeError(f"STARTUP answered with opcode {opcode}: {body[:200]!r}")
        sock.sendall(cql_frame(0x07, struct.pack(">i", len(query)) + query + struct.pack(">HB", 1, 0)))
        opcode, body = cql_read(sock)
        if opcode != 0x08:  # RESULT
            raise RuntimeError(f"query answered with opcode {opcode}: {body[:200]!r}")


def main():
    kind, addr = sys.argv[1], sys.argv[2]
    probes = {"kafka": kafka_ready, "cql": cql_ready}
    try:
        probes[kind](addr)
    except Exception as error:  # any failure means "not ready yet"
        print(f"{kind} {addr} not ready: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
