#!/usr/bin/python3
"""Request rules of protocol.md: ids, error codes, frame types, UTF-8,
size limits (also fragmented and compressed), error budget."""

import json
import os
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgtest as T                                     # noqa: E402
from mqgtest import CLOSE, CONT, TEXT, check, eq, expect_error  # noqa: E402

t = T.Suite("protocol")

ROLES = {"all": {"subscribe": ["#"], "publish": ["#"]}}
MAX = 1024


def main():
    """Anonymous role "all", max_message_bytes 1024, a large error budget
    so that one session can go through many bad requests."""
    return t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                      "limits": {"max_message_bytes": MAX, "max_errors": 100}})


def strict():
    """max_errors 5."""
    return t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                      "limits": {"max_message_bytes": MAX, "max_errors": 5}})


def compressing():
    return t.gateway({"auth": {"anonymous_role": "all"}, "roles": ROLES,
                      "listeners": [{"path": "/ws", "compression": True}],
                      "limits": {"max_message_bytes": MAX, "max_errors": 100}})


def padded(size, rid=1):
    """A ping request of exactly size bytes."""
    head, tail = '{"op":"ping","id":%d,"pad":"' % rid, '"}'
    n = size - len(head) - len(tail)
    assert n >= 0
    return head + "x" * n + tail


def reply_to_raw(ws, text):
    ws.send_text(text)
    return ws.recv_json()


def closes_with(code, send, gw=None, what="session"):
    """Open a witness and a victim, let send(victim) misbehave, expect the
    victim closed with code and the witness (and a new session) unharmed."""
    gw = gw or main()
    witness = gw.session()
    victim = gw.session()
    send(victim)
    frames = victim.expect_close(code, what=what)
    witness.sync()
    gw.assert_serving()
    return frames


# --- id ---------------------------------------------------------------------

@t.test("id: integers 0 and 2^53-1 echoed as integers")
def _():
    ws = main().session()
    for raw, rid in (("0", 0), ("9007199254740991", T.MAX_SAFE_INT), ("42", 42)):
        obj, text = ws.request({"op": "ping", "id": rid}), ws.last_text
        eq(obj, {"op": "pong", "id": rid}, "pong to id %s" % raw)
        check('"id":%s' % raw in text.replace(" ", ""), "id not echoed verbatim: %s" % text)


@t.test("id: strings up to 64 bytes echoed (empty, 64 ASCII, 32 two-byte chars, U+0000 inside)")
def _():
    ws = main().session()
    for rid in ("", "x" * 64, "\u00e9" * 32, "a\u0000b", "with \"quotes\" and \\"):
        ws.send_json({"op": "ping", "id": rid})
        eq(ws.recv_json(), {"op": "pong", "id": rid}, "pong to id %r" % rid)


@t.test("id: other types and sizes are bad_request")
def _():
    ws = main().session()
    for raw in ("-1", "9007199254740992", "18446744073709551616", "1.5", "1.0", "1e3", "1E2",
                "-0.0", "true", "false", "null", "{}", "[]", "[1]",
                '"%s"' % ("x" * 65), '"%s"' % ("\u00e9" * 33)):
        ws.send_text('{"op":"ping","id":%s}' % raw)
        expect_error(ws.recv_json(), "bad_request", None, "ping with id %s" % raw[:20])
    ws.sync()


@t.test("requests without id: no reply on success")
def _():
    gw = main()
    watch = t.mosquitto.client()
    watch.subscribe("noid/#", 1)
    ws = gw.session()
    ws.send_json({"op": "sub", "topic": "noid/in", "qos": 0})
    ws.send_json({"op": "unsub", "topic": "noid/in"})
    ws.send_json({"op": "unsub", "topic": "never/held"})
    ws.send_json({"op": "pub", "topic": "noid/out", "text": "quiet"})
    eq(ws.sync(), [], "frames before the pong")
    m = watch.get()
    eq((m.topic, m.payload), ("noid/out", b"quiet"), "published without id")


@t.test("requests without id: an error without id on failure; ping always answered")
def _():
    ws = main().session()
    cases = (('{"op":"sub","topic":"a/#/b"}', "bad_topic"),
             ('{"op":"nope"}', "unknown_op"),
             ('{"op":"sub","topic":"a","qos":7}', "bad_request"),
             ("not json", "bad_json"))
    for text, code in cases:
        ws.send_text(text)
        expect_error(ws.recv_json(), code, what=text)
    ws.send_json({"op": "ping"})
    eq(ws.recv_json(), {"op": "pong"}, "pong without id")


@t.test("a request with id gets exactly one reply carrying it")
def _():
    ws = main().session()
    ws.send_json({"op": "sub", "id": "s1", "topic": "one/reply", "qos": 0})
    ws.send_json({"op": "unsub", "id": "u1", "topic": "one/reply"})
    ws.send_json({"op": "pub", "id": "p1", "topic": "one/reply", "text": "x"})
    ws.send_json({"op": "sub", "id": "s2", "topic": "one/#/bad"})
    frames = ws.sync()
    eq([(f["op"], f.get("id")) for f in frames],
       [("ok", "s1"), ("ok", "u1"), ("ok", "p1"), ("error", "s2")], "replies in order")


# --- error codes ------------------------------------------------------------

@t.test("bad_json: frames that are not one JSON text")
def _():
    ws = main().session()
    for text in ("not json", "{", '{"op":"ping"', "", " ", '{"op":"ping"} x',
                 '{"op":"ping","id":1}{"op":"ping","id":2}', "{'op':'ping'}",
                 '{"op":"ping",}', '{"op":"ping","id":NaN}', '{"op":"ping","id":01}'):
        ws.send_text(text)
        expect_error(ws.recv_json(), "bad_json", what="reply to %r" % text)
    eq(ws.sync(), [], "extra frames")


@t.test("bad_request: JSON that is not an object")
def _():
    ws = main().session()
    for text in ("[]", '[{"op":"ping","id":1}]', '"ping"', "42", "null", "true"):
        ws.send_text(text)
        expect_error(ws.recv_json(), "bad_request", what="reply to %s" % text)
    eq(ws.sync(), [], "extra frames")


@t.test("bad_request: op missing or not a string (id echoed)")
def _():
    ws = main().session()
    for i, text in enumerate(('{"id":%d}', '{"op":5,"id":%d}', '{"op":null,"id":%d}',
                              '{"op":["ping"],"id":%d}', '{"op":{"x":1},"id":%d}')):
        ws.send_text(text % i)
        expect_error(ws.recv_json(), "bad_request", i, "reply to %s" % (text % i))
    ws.send_text("{}")
    expect_error(ws.recv_json(), "bad_request", what="reply to {}")


@t.test("bad_request: named fields of the wrong type (id echoed)")
def _():
    ws = main().session()
    cases = [
        {"op": "sub", "topic": "a/b", "qos": "1"},
        {"op": "sub", "topic": "a/b", "qos": 3},
        {"op": "sub", "topic": "a/b", "qos": -1},
        {"op": "sub", "topic": "a/b", "qos": 1.5},
        {"op": "sub", "topic": "a/b", "qos": True},
        {"op": "sub", "topic": "a/b", "qos": None},
        {"op": "sub", "topic": 5},
        {"op": "sub", "topic": ["a"]},
        {"op": "unsub", "topic": 5},
        {"op": "pub", "topic": 5, "text": "x"},
        {"op": "pub", "topic": "a/b", "text": 5},
        {"op": "pub", "topic": "a/b", "base64": 5},
        {"op": "pub", "topic": "a/b", "text": "x", "qos": "0"},
        {"op": "pub", "topic": "a/b", "text": "x", "qos": 3},
        {"op": "pub", "topic": "a/b", "text": "x", "retain": "yes"},
        {"op": "pub", "topic": "a/b", "text": "x", "retain": 1},
        {"op": "pub", "topic": "a/b", "payload": {"a": 1}, "text": "x"},
        {"op": "pub", "topic": "a/b", "text": "x", "base64": "eA=="},
        {"op": "pub", "topic": "a/b", "payload": 1, "base64": "eA=="},
        {"op": "pub", "topic": "a/b", "payload": None, "text": ""},
        {"op": "pub", "topic": "a/b", "base64": "!!!!"},
        {"op": "pub", "topic": "a/b", "base64": "ab-_"},
        {"op": "pub", "topic": "a/b", "base64": "eA=\u00e9"},
    ]
    watch = t.mosquitto.client()
    watch.subscribe("a/b")
    for i, req in enumerate(cases):
        req = dict(req, id=100 + i)
        ws.send_json(req)
        expect_error(ws.recv_json(), "bad_request", 100 + i, "reply to %s" % T.compact(req))
    ws.sync()
    # nothing of that was published
    ws.request({"op": "pub", "id": "mark", "topic": "a/b", "text": "marker"})
    eq([m.payload for m in watch.get_until(lambda m: m.payload == b"marker")], [b"marker"],
       "messages that reached the broker")


@t.test("sub without topic: refused (bad_request or bad_topic)")
def _():
    ws = main().session()
    r = ws.request({"op": "sub", "id": 1})
    check(r.get("op") == "error" and r.get("code") in ("bad_request", "bad_topic"),
          "reply: %s" % T.show(r))


@t.test("unknown_op: unknown, empty, wrong case, server-side and NUL-spliced ops")
def _():
    ws = main().session()
    for i, op in enumerate(("frobnicate", "", "PING", "Ping", "msg", "status", "ping\u0000",
                            "pi\u0000ng", "subscribe")):
        ws.send_json({"op": op, "id": i})
        expect_error(ws.recv_json(), "unknown_op", i, "reply to op %r" % op)


@t.test("fields the protocol does not name are ignored")
def _():
    ws = main().session()
    eq(ws.request({"op": "ping", "id": 1, "extra": {"x": [1, 2]}, "v": 2}), {"op": "pong", "id": 1},
       "ping with extra fields")
    eq(ws.request({"op": "sub", "id": 2, "topic": "x/y", "qos": 0, "foo": None, "bar": [1]}),
       {"op": "ok", "id": 2, "qos": 0}, "sub with extra fields")
    r = ws.request({"op": "pub", "id": 3, "topic": "x/z", "text": "a", "priority": "high"})
    eq(r, {"op": "ok", "id": 3}, "pub with extra fields")
    eq(ws.request({"op": "unsub", "id": 4, "topic": "x/y", "why": "done"}), {"op": "ok", "id": 4},
       "unsub with extra fields")


@t.test("deeply nested JSON request is answered, session stays usable")
def _():
    ws = main().session()
    depth = 480
    ws.send_text('{"op":"ping","id":1,"x":%s%s}' % ("[" * depth, "]" * depth))
    r = ws.recv_json()
    check(r == {"op": "pong", "id": 1} or (r.get("op") == "error" and
                                          r.get("code") in ("bad_json", "bad_request")),
          "reply: %s" % T.show(r))
    ws.sync()


# --- frame types and UTF-8 --------------------------------------------------

@t.test("binary frame: closed with 1003, other sessions unaffected")
def _():
    closes_with(1003, lambda ws: ws.send_binary(b'{"op":"ping","id":1}'), what="binary frame")


@t.test("invalid UTF-8 text: closed with 1007, other sessions unaffected")
def _():
    for bad in (b'{"op":"ping","id":"\xff"}', b'{"op":"ping","id":"\xc0\xaf"}',
                b'{"op":"ping","id":"\xed\xa0\x80"}', b'{"op":"ping","id":"\xf4\x90\x80\x80"}',
                b'{"op":"ping","id":"\xc3"}', b"\x80"):
        closes_with(1007, lambda ws: ws.send_text(bad), what="text %r" % bad)


@t.test("fragments: a character split across fragments is fine, ping between fragments answered")
def _():
    ws = main().session()
    text = '{"op":"ping","id":"\u00e9\u20ac\U0001f600"}'.encode()
    cut1 = text.index(b"\xc3") + 1          # inside the 2-byte character
    cut2 = text.index(b"\xe2") + 2          # inside the 3-byte character
    cut3 = text.index(b"\xf0") + 3          # inside the 4-byte character
    ws.send_fragments([text[:cut1], text[cut1:cut2], text[cut2:cut3], text[cut3:]])
    eq(ws.recv_json(), {"op": "pong", "id": "\u00e9\u20ac\U0001f600"}, "reply")
    ws.send_fragments([b'{"op":"ping",', b'"id":7}'],
                      between=lambda i: ws.send_ping_frame(b"ctl") if i == 0 else None)
    # the control pong and the reply in either order: a reply queued in
    # the pass that read the ping goes out at its end, the pong at the
    # next writable callback (RFC 6455 does not order them)
    frames = [ws.recv_frame(), ws.recv_frame()]
    pongs = [f.payload for f in frames if f.opcode == T.PONG]
    texts = [json.loads(f.payload) for f in frames if f.opcode == T.TEXT]
    eq(pongs, [b"ctl"], "control pong to a ping between fragments")
    eq(texts, [{"op": "pong", "id": 7}], "reply to the fragmented ping")


@t.test("fragments: invalid UTF-8 across fragments or at the end closes 1007")
def _():
    closes_with(1007, lambda ws: ws.send_fragments([b'{"op":"ping","id":"\xc3', b'A"}']),
                what="lead byte then ASCII in the next fragment")
    closes_with(1007, lambda ws: ws.send_fragments([b'{"op":"ping","id":"ab"}', b"\xe2\x82"]),
                what="message ending inside a character")


# --- size -------------------------------------------------------------------

@t.test("max_message_bytes: exactly the limit is accepted")
def _():
    ws = main().session()
    eq(reply_to_raw(ws, padded(MAX)), {"op": "pong", "id": 1}, "reply to %d bytes" % MAX)
    ws.send_fragments([padded(MAX, 2)[:300], padded(MAX, 2)[300:700], padded(MAX, 2)[700:]])
    eq(ws.recv_json(), {"op": "pong", "id": 2}, "reply to %d bytes in 3 fragments" % MAX)


@t.test("max_message_bytes: one byte over closes 1009")
def _():
    closes_with(1009, lambda ws: ws.send_text(padded(MAX + 1)), what="%d bytes" % (MAX + 1))


@t.test("max_message_bytes: fragmented message over the limit closes 1009")
def _():
    big = padded(MAX + 200)
    closes_with(1009, lambda ws: ws.send_fragments([big[:400], big[400:800], big[800:]]),
                what="fragmented %d bytes" % len(big))


@t.test("max_message_bytes: enforced while assembling (no final fragment, huge frame header)")
def _():
    closes_with(1009, lambda ws: (ws.send_frame(TEXT, b'{"op":"ping","pad":"' + b"x" * 600, fin=False),
                                  ws.send_frame(CONT, b"x" * 600, fin=False)),
                what="unfinished fragmented message over the limit")
    # a frame announcing 16 MiB of which only 4 KiB are sent
    hdr = struct.pack("!BBQ", 0x81, 0xFF, 16 << 20) + b"\x00\x00\x00\x00"
    closes_with(1009, lambda ws: ws.send_raw(hdr + b"x" * 4096), what="16 MiB frame header")


@t.test("before authentication messages are capped at 16 KiB: 16384 bytes pass, 16385 close 1009")
def _():
    gw = t.gateway({"auth": {"timeout_s": 5}, "roles": ROLES,
                    "limits": {"max_message_bytes": 65536}})
    ws = gw.ws()
    eq(ws.recv_json()["op"], "hello", "first frame")
    eq(reply_to_raw(ws, padded(16384)), {"op": "pong", "id": 1}, "reply to 16384 bytes before auth")
    ws.send_text(padded(16385))
    ws.expect_close(1009, what="16385 bytes before authentication")


# --- error budget -----------------------------------------------------------

@t.test("max_errors 5: 5 errors keep the session, the 6th closes it 4429 after 5 errors")
def _():
    gw = strict()
    witness = gw.session()
    ok = gw.session()
    ok.send_raw(b"".join(T.frame_bytes(TEXT, b"bad %d" % i) for i in range(5)))
    for i in range(5):
        expect_error(ok.recv_json(), "bad_json", what="error %d" % (i + 1))
    ok.sync()
    victim = gw.session()
    victim.send_raw(b"".join(T.frame_bytes(TEXT, b"bad %d" % i) for i in range(6)))
    frames = victim.expect_close(4429, what="session with 6 errors")
    check(5 <= len(frames) <= 6, "expected 5 (or 6) error frames before the close, got %s"
          % T.show(frames))
    for f in frames:
        expect_error(f, "bad_json", what="frame before the close")
    witness.sync()
    ok.sync()
    gw.assert_serving()


@t.test("max_errors counts every kind of error (bad_request, unknown_op, bad_topic)")
def _():
    gw = strict()
    ws = gw.session()
    for req in ({"op": "nope", "id": 1}, {"op": "sub", "id": 2, "topic": "#/x"},
                {"op": "sub", "id": 3, "topic": "a", "qos": 9}, {"op": "pub", "id": 4, "topic": "+"},
                {"op": "x", "id": 5}, {"op": "y", "id": 6}):
        ws.send_json(req)
    frames = ws.expect_close(4429, what="session with 6 errors")
    check(len(frames) >= 5, "expected 5 errors before the close: %s" % T.show(frames))
    eq([f.get("code") for f in frames[:5]],
       ["unknown_op", "bad_topic", "bad_request", "bad_topic", "unknown_op"], "error codes")


# --- permessage-deflate -----------------------------------------------------

@t.test("permessage-deflate: not negotiated when compression is off")
def _():
    ws = main().ws(deflate=True)
    eq(ws.deflate, None, "extension negotiated on a listener without compression")
    eq(ws.recv_json()["op"], "hello", "first frame")


@t.test("permessage-deflate: negotiated when on; compressed requests answered")
def _():
    ws = compressing().ws(deflate=True)
    check(ws.deflate is not None, "no permessage-deflate in the answer: %r" % ws.headers)
    eq(ws.recv_json()["op"], "hello", "first frame")
    ws.sync()
    for i in range(3):
        ws.send_compressed('{"op":"ping","id":%d}' % i)
        eq(ws.recv_json(), {"op": "pong", "id": i}, "reply to compressed ping %d" % i)
    ws.send_compressed(padded(MAX, 9))
    eq(ws.recv_json(), {"op": "pong", "id": 9}, "reply to a message inflating to exactly the limit")


@t.test("permessage-deflate: the limit counts inflated bytes (1009), invalid UTF-8 after inflation (1007)")
def _():
    gw = compressing()
    witness = gw.ws(deflate=True)
    witness.recv_json()
    victim = gw.ws(deflate=True)
    victim.recv_json()
    data = victim.compress(padded(100000))
    check(len(data) < MAX, "compressed bomb is %d bytes" % len(data))
    victim.send_frame(TEXT, data, rsv1=True)
    victim.expect_close(1009, what="compressed message inflating to 100000 bytes")
    victim2 = gw.ws(deflate=True)
    victim2.recv_json()
    victim2.send_compressed(b'{"op":"ping","id":"\xff"}')
    victim2.expect_close(1007, what="compressed invalid UTF-8")
    witness.sync()


# --- close handling ---------------------------------------------------------

@t.test("client close with a reason is echoed; server never sends after its close")
def _():
    ws = main().session()
    ws.send_frame(CLOSE, struct.pack("!H", 1000) + b"bye")
    f = ws.recv_frame()
    eq(f.opcode, CLOSE, "frame after our close")
    eq(struct.unpack("!H", f.payload[:2])[0] if len(f.payload) >= 2 else None, 1000, "close code")
    main().assert_serving()


if __name__ == "__main__":
    sys.exit(t.run())
