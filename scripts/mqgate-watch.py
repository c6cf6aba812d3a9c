#!/usr/bin/python3
"""Prints what an mqgate session receives: mqgate-watch.py URL [FILTER...]

A minimal WebSocket client (standard library only) for trying a gateway
from a terminal: it subscribes to each FILTER (default '#') and prints every
frame as a line of JSON. Use --token to authenticate with a JWT.
"""
import argparse
import base64
import json
import os
import socket
import ssl
import struct
import sys
from urllib.parse import urlsplit


def connect(url, token):
    u = urlsplit(url)
    port = u.port or (443 if u.scheme == "wss" else 80)
    sock = socket.create_connection((u.hostname, port))
    if u.scheme == "wss":
        sock = ssl.create_default_context().wrap_socket(
            sock, server_hostname=u.hostname)
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqgate.v1\r\n"
           % (u.path or "/", u.hostname, port, key))
    if token:
        req += "Authorization: Bearer %s\r\n" % token
    sock.sendall((req + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            sys.exit("connection closed during the handshake")
        head += chunk
    status = head.split(b"\r\n", 1)[0].decode()
    if " 101 " not in status + " ":
        sys.exit("refused: " + status)
    return sock, head.split(b"\r\n\r\n", 1)[1]


def send(sock, obj):
    data = json.dumps(obj).encode()
    mask = os.urandom(4)
    n = len(data)
    hdr = bytes([0x81])
    if n < 126:
        hdr += bytes([0x80 | n])
    elif n < 65536:
        hdr += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        hdr += bytes([0x80 | 127]) + struct.pack("!Q", n)
    sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def frames(sock, buf):
    while True:
        while len(buf) < 2 or len(buf) < header_len(buf):
            chunk = sock.recv(65536)
            if not chunk:
                return
            buf += chunk
        op, n, off = buf[0] & 0x0F, buf[1] & 0x7F, 2
        if n == 126:
            n, off = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            n, off = struct.unpack("!Q", buf[2:10])[0], 10
        while len(buf) < off + n:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buf += chunk
        payload, buf = buf[off:off + n], buf[off + n:]
        yield op, payload


def header_len(buf):
    n = buf[1] & 0x7F
    return 2 if n < 126 else 4 if n == 126 else 10


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("url")
    ap.add_argument("filters", nargs="*", default=["#"])
    ap.add_argument("--token")
    args = ap.parse_args()
    sock, rest = connect(args.url, args.token)
    for i, f in enumerate(args.filters):
        send(sock, {"op": "sub", "id": i + 1, "topic": f})
    for op, payload in frames(sock, rest):
        if op == 1:
            print(payload.decode(), flush=True)
        elif op == 8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            print("closed: %s %s" % (code, payload[2:].decode(errors="replace")))
            return


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
