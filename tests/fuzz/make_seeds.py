#!/usr/bin/python3
"""tests/fuzz/make_seeds.py — writes the seed corpora of the fuzz targets (tests/fuzz/corpus/).

Run it from anywhere with /usr/bin/python3 (standard library only); it rewrites the files it
owns and leaves the others (findings added after a fix) alone. The output is committed, so the
tests replay the same seeds everywhere. Seeds are meant to be meaningful: every MQTT packet type
of 3.1, 3.1.1 and 5.0 with and without properties, plus the refusals the codec must make; URLs
with the topics and filters that make validation and matching interesting; publish bodies; config
files.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

V31, V311, V5 = 3, 4, 5


# ---- MQTT encoding ----

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def lstr(s):
    b = s.encode() if isinstance(s, str) else s
    return u16(len(b)) + b


def packet(type_, flags, body):
    return bytes([type_ << 4 | flags]) + varint(len(body)) + body


# Properties (MQTT 5 §2.2.2.2): id, then the value as its type says.
def p_byte(pid, v):
    return bytes([pid, v])


def p_u16(pid, v):
    return bytes([pid]) + u16(v)


def p_u32(pid, v):
    return bytes([pid]) + u32(v)


def p_varint(pid, v):
    return bytes([pid]) + varint(v)


def p_str(pid, s):
    return bytes([pid]) + lstr(s)


def p_pair(k, v):
    return bytes([0x26]) + lstr(k) + lstr(v)


def props(*items):
    b = b"".join(items)
    return varint(len(b)) + b


def connect(version, client_id="client-1", clean=True, keepalive=60, will=None, username=None,
            password=None, cprops=b"", name=None):
    """@will: (topic, payload, qos, retain, will_props)."""
    if name is None:
        name = "MQIsdp" if version == V31 else "MQTT"
    flags = 0x02 if clean else 0
    if will:
        flags |= 0x04 | will[2] << 3 | (0x20 if will[3] else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = lstr(name) + bytes([version, flags]) + u16(keepalive)
    if version == V5:
        body += props(cprops) if cprops is not None else b""
    body += lstr(client_id)
    if will:
        if version == V5:
            body += props(will[4])
        body += lstr(will[0]) + lstr(will[1])
    if username is not None:
        body += lstr(username)
    if password is not None:
        body += lstr(password)
    return packet(1, 0, body)


def connack(version, code=0, session_present=False, cprops=b""):
    body = bytes([1 if session_present else 0, code])
    if version == V5:
        body += props(cprops)
    return packet(2, 0, body)


def publish(version, topic, payload=b"", qos=0, retain=False, dup=False, pid=1, pprops=b""):
    flags = (0x08 if dup else 0) | qos << 1 | (1 if retain else 0)
    body = lstr(topic)
    if qos:
        body += u16(pid)
    if version == V5:
        body += props(pprops)
    return packet(3, flags, body + payload)


def ack(type_, version, pid=7, reason=None, aprops=None):
    body = u16(pid)
    if version == V5 and reason is not None:
        body += bytes([reason])
        if aprops is not None:
            body += props(aprops)
    return packet(type_, 0x02 if type_ == 6 else 0, body)


def subscribe(version, entries, pid=10, sprops=b""):
    """@entries: (filter, options)."""
    body = u16(pid)
    if version == V5:
        body += props(sprops)
    for f, o in entries:
        body += lstr(f) + bytes([o])
    return packet(8, 0x02, body)


def suback(version, codes, pid=10, sprops=b""):
    body = u16(pid)
    if version == V5:
        body += props(sprops)
    return packet(9, 0, body + bytes(codes))


def unsubscribe(version, filters, pid=11, uprops=b""):
    body = u16(pid)
    if version == V5:
        body += props(uprops)
    for f in filters:
        body += lstr(f)
    return packet(10, 0x02, body)


def unsuback(version, codes=(), pid=11, uprops=b""):
    body = u16(pid)
    if version == V5:
        body += props(uprops) + bytes(codes)
    return packet(11, 0, body)


def disconnect(version, reason=None, dprops=None, type_=14):
    body = b""
    if version == V5 and reason is not None:
        body += bytes([reason])
        if dprops is not None:
            body += props(dprops)
    return packet(type_, 0, body)


def codec_seeds():
    s = {}
    will_props = (p_u32(0x18, 5) + p_byte(0x01, 1) + p_u32(0x02, 3600) +
                  p_str(0x03, "text/plain") + p_str(0x08, "replies/c1") +
                  p_str(0x09, b"\x00\x01corr") + p_pair("k", "v"))
    for v, tag in ((V31, "v31"), (V311, "v311"), (V5, "v5")):
        s[f"{tag}-connect-min"] = connect(v, client_id="c")
        s[f"{tag}-connect-empty-id"] = connect(v, client_id="", clean=True)
        s[f"{tag}-connect-full"] = connect(
            v, client_id="dashboard-42", clean=False, keepalive=30,
            will=("clients/dashboard-42/status", b"offline", 1, True, will_props),
            username="alice", password=b"s3cr\xffet")
        s[f"{tag}-connect-will-qos2"] = connect(v, will=("a/b", b"", 2, False, b""))
        s[f"{tag}-connect-user-only"] = connect(v, username="bob")
        s[f"{tag}-connack-accepted"] = connack(v, 0)
        s[f"{tag}-publish-qos0"] = publish(v, "sensors/kitchen/temp", b"21.5")
        s[f"{tag}-publish-qos1-retain"] = publish(v, "sensors/kitchen/temp", b"21.5", qos=1,
                                                   retain=True, pid=1)
        s[f"{tag}-publish-qos2-dup"] = publish(v, "a/b", b"\x00\x01\xfe\xff", qos=2, dup=True,
                                               pid=65535)
        s[f"{tag}-publish-utf8"] = publish(v, "maison/salle/température", "21 °C".encode())
        s[f"{tag}-publish-sys"] = publish(v, "$SYS/broker/uptime", b"12345 seconds")
        s[f"{tag}-publish-empty-levels"] = publish(v, "/a//b/", b"")
        for t, name in ((4, "puback"), (5, "pubrec"), (6, "pubrel"), (7, "pubcomp")):
            s[f"{tag}-{name}"] = ack(t, v, pid=7)
        s[f"{tag}-subscribe"] = subscribe(v, [("sensors/+/temp", 1)])
        s[f"{tag}-subscribe-many"] = subscribe(
            v, [("#", 0), ("+/+", 1), ("a/b/#", 2), ("$SYS/#", 0), ("/", 1)])
        s[f"{tag}-subscribe-shared"] = subscribe(v, [("$share/group/sensors/#", 1)])
        s[f"{tag}-suback"] = suback(v, [0, 1, 2, 0x80])
        s[f"{tag}-unsubscribe"] = unsubscribe(v, ["sensors/+/temp", "#"])
        s[f"{tag}-unsuback"] = unsuback(v, [0x00, 0x11] if v == V5 else ())
        s[f"{tag}-pingreq"] = packet(12, 0, b"")
        s[f"{tag}-pingresp"] = packet(13, 0, b"")
        s[f"{tag}-disconnect"] = disconnect(v)
    # 3.x only
    s["v31-connack-refused"] = connack(V31, 5)
    s["v311-connack-session-present"] = connack(V311, 0, session_present=True)
    s["v311-connack-bad-credentials"] = connack(V311, 4)
    # MQTT 5 properties everywhere they may appear.
    s["v5-connect-props"] = connect(
        V5, cprops=p_u32(0x11, 3600) + p_u16(0x21, 20) + p_u32(0x27, 1048576) +
        p_u16(0x22, 10) + p_byte(0x19, 1) + p_byte(0x17, 0) + p_pair("app", "dash") +
        p_str(0x15, "SCRAM-SHA-1") + p_str(0x16, b"\x01\x02"))
    s["v5-connect-password-only"] = connect(V5, password=b"token")
    s["v5-connack-props"] = connack(
        V5, 0, True, p_u32(0x11, 0) + p_u16(0x21, 100) + p_byte(0x24, 1) + p_byte(0x25, 0) +
        p_u32(0x27, 65536) + p_str(0x12, "auto-1234") + p_u16(0x22, 5) +
        p_str(0x1F, "welcome") + p_pair("k", "v") + p_byte(0x28, 1) + p_byte(0x29, 0) +
        p_byte(0x2A, 1) + p_u16(0x13, 120) + p_str(0x1A, "resp/") + p_str(0x1C, "other:1883") +
        p_str(0x15, "m") + p_str(0x16, b"d"))
    s["v5-connack-refused"] = connack(V5, 0x87, cprops=p_str(0x1F, "not authorized"))
    s["v5-connack-use-another"] = connack(V5, 0x9C, cprops=p_str(0x1C, "b2:1883"))
    # Refusals a 3.x client gets as the nearest 3.1.1 code.
    for code in (0x84, 0x85, 0x86, 0x8A, 0x8C, 0x97):
        s[f"v5-connack-refused-{code:02x}"] = connack(V5, code)
    s["v5-publish-props"] = publish(
        V5, "req/svc", b'{"x":1}', qos=1,
        pprops=p_byte(0x01, 1) + p_u32(0x02, 60) + p_str(0x03, "application/json") +
        p_str(0x08, "resp/svc/1") + p_str(0x09, b"\x00\xffid") + p_pair("a", "1") +
        p_pair("a", "2") + p_varint(0x0B, 1) + p_varint(0x0B, 268435455))
    s["v5-publish-alias-set"] = publish(V5, "long/topic/name", b"x", pprops=p_u16(0x23, 1))
    s["v5-publish-alias-only"] = publish(V5, "", b"x", pprops=p_u16(0x23, 1))
    for t, name in ((4, "puback"), (5, "pubrec"), (6, "pubrel"), (7, "pubcomp")):
        reason = {4: 0x10, 5: 0x80, 6: 0x92, 7: 0x92}[t]
        s[f"v5-{name}-reason"] = ack(t, V5, reason=reason)
        s[f"v5-{name}-reason-props"] = ack(t, V5, reason=reason,
                                           aprops=p_str(0x1F, "why") + p_pair("k", "v"))
        s[f"v5-{name}-zero-long"] = ack(t, V5, reason=0, aprops=b"")
    s["v5-subscribe-options"] = subscribe(
        V5, [("a/+", 0x04 | 0x08 | 0x01), ("b/#", 0x10 | 2), ("c", 0x20)],
        sprops=p_varint(0x0B, 42) + p_pair("k", "v"))
    s["v5-suback-reasons"] = suback(V5, [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97,
                                         0x9E, 0xA1, 0xA2], sprops=p_str(0x1F, "partly"))
    s["v5-unsubscribe-props"] = unsubscribe(V5, ["a/#"], uprops=p_pair("k", "v"))
    s["v5-unsuback-reasons"] = unsuback(V5, [0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91],
                                        uprops=p_str(0x1F, "r"))
    s["v5-disconnect-reason"] = disconnect(V5, 0x04)
    s["v5-disconnect-props"] = disconnect(
        V5, 0x9C, p_u32(0x11, 0) + p_str(0x1F, "moving") + p_str(0x1C, "b2") + p_pair("k", "v"))
    s["v5-disconnect-zero-long"] = disconnect(V5, 0x00, b"")
    s["v5-auth-continue"] = disconnect(V5, 0x18, p_str(0x15, "SCRAM-SHA-1") +
                                       p_str(0x16, b"\x00\x01"), type_=15)
    s["v5-auth-reauth"] = disconnect(V5, 0x19, p_str(0x15, "m"), type_=15)
    s["v5-auth-empty"] = packet(15, 0, b"")
    # Refusals: each must be a clean error, never a crash.
    s["bad-publish-qos3"] = packet(3, 0x06, lstr("a") + u16(1))
    s["bad-publish-dup-qos0"] = packet(3, 0x08, lstr("a"))
    s["bad-publish-wildcard"] = publish(V311, "a/+", b"x")
    s["bad-publish-pid0"] = publish(V311, "a", b"x", qos=1, pid=0)
    s["bad-publish-nul-topic"] = publish(V311, b"a\x00b", b"x")
    s["bad-publish-bad-utf8"] = publish(V311, b"a\xc0\xafb", b"x")
    s["bad-publish-nonchar"] = publish(V311, "a\ufffe", b"x")
    s["bad-v5-publish-empty-topic"] = publish(V5, "", b"x")
    s["bad-v5-publish-dup-prop"] = publish(V5, "a", b"", pprops=p_u32(0x02, 1) + p_u32(0x02, 2))
    s["bad-v5-publish-alias0"] = publish(V5, "a", b"", pprops=p_u16(0x23, 0))
    s["bad-v5-publish-subid-long"] = publish(V5, "a", b"", pprops=bytes([0x0B, 0x81, 0x00]))
    s["bad-v5-publish-prop-truncated"] = publish(V5, "a", b"", pprops=bytes([0x03, 0x00, 0x05]))
    s["bad-v5-publish-response-wild"] = publish(V5, "a", b"", pprops=p_str(0x08, "r/#"))
    s["bad-v5-connect-auth-data-only"] = connect(V5, cprops=p_str(0x16, b"x"))
    s["bad-connect-level6"] = connect(6)
    s["bad-connect-mqisdp-level4"] = connect(V311, name="MQIsdp")
    s["bad-connect-name"] = connect(V311, name="MQTX")
    s["bad-connect-reserved-flag"] = packet(1, 0, lstr("MQTT") + bytes([4, 0x03]) + u16(0) +
                                            lstr("c"))
    s["bad-v311-connect-password-only"] = connect(V311, password=b"x")
    s["bad-connect-will-topic-wild"] = connect(V311, will=("a/#", b"", 0, False, b""))
    s["bad-connect-client-id-ctrl"] = connect(V311, client_id="a\x01")
    s["bad-remaining-length-5-bytes"] = bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
    s["bad-remaining-length-overlong"] = bytes([0xC0, 0x80, 0x00])
    s["bad-truncated"] = publish(V311, "sensors/temp", b"21")[:-3]
    s["bad-trailing"] = packet(12, 0, b"") + b"\x00"
    s["bad-fixed-flags"] = packet(8, 0x00, u16(1) + lstr("a") + b"\x00")
    s["bad-type0"] = packet(0, 0, b"")
    s["bad-subscribe-qos3"] = subscribe(V311, [("a", 3)])
    s["bad-subscribe-empty"] = subscribe(V311, [])
    s["bad-subscribe-filter"] = subscribe(V311, [("a/#/b", 0)])
    s["bad-v5-subscribe-shared-nolocal"] = subscribe(V5, [("$share/g/a", 0x04)])
    s["bad-v5-subscribe-rh3"] = subscribe(V5, [("a", 0x30)])
    s["bad-suback-code"] = suback(V311, [3])
    s["bad-v5-ack-reason"] = ack(4, V5, reason=0x92)
    s["bad-connack-session-refused"] = connack(V311, 5, session_present=True)
    # A stream of packets back to back, as a WebSocket frame may carry.
    s["stream-connect-subscribe-publish"] = (
        connect(V311, client_id="s") + subscribe(V311, [("a/#", 1)]) +
        publish(V311, "a/b", b"x", qos=1) + packet(12, 0, b"") + disconnect(V311))
    s["stream-v5"] = (connect(V5, client_id="s") + publish(V5, "a", b"1", pprops=p_u16(0x23, 3)) +
                      publish(V5, "", b"2", pprops=p_u16(0x23, 3)) + disconnect(V5, 0x04))
    # Bare property bytes, for props_validate() at every place.
    s["props-publish"] = (p_byte(0x01, 0) + p_u32(0x02, 10) + p_str(0x03, "t") +
                          p_varint(0x0B, 300) + p_pair("", ""))
    s["props-connect"] = p_u32(0x11, 10) + p_u16(0x21, 1) + p_str(0x15, "x") + p_str(0x16, b"")
    s["props-will"] = p_u32(0x18, 0) + p_str(0x08, "r") + p_str(0x09, b"")
    s["props-connack"] = p_byte(0x24, 0) + p_str(0x12, "id") + p_u16(0x13, 0)
    return {name + ".bin": data for name, data in s.items()}


# ---- URLs, as lws hands them over (already percent-decoded) ----

URLS = [
    "/api/v1/publish/sensors/kitchen/temp",
    "/api/v1/publish/sensors/ /temp",
    "/api/v1/publish//leading/and/trailing/",
    "/api/v1/publish/a b/ c / d",
    "/api/v1/publish/$SYS/broker/uptime",
    "/api/v1/publish/maison/salle/température",
    "/api/v1/publish/emoji/\U0001F600",
    "/api/v1/topics/sensors/kitchen/temp",
    "/api/v1/topics/sensors/#",
    "/api/v1/topics?filter=sensors/ /temp&limit=10",
    "/api/v1/topics?filter=#",
    "/api/v1/topics?filter= ",
    "/api/v1/topics?filter=$share/group/a/ /c",
    "/api/v1/request/svc/echo?qos=1&timeout_ms=500",
    "/api/v1/stream?topic=sensors/#&topic=$SYS/ &retained=true&last_event_id=5",
    "/api/v1/stream?topic=#&topic=+/#&topic=$SYS/#&topic=$SYS/broker",
    "/api/v1/stream?topic=sensors/ /temp&topic=sensors/#&topic=sensors/kitchen/temp",
    "/api/v1/stream?topic=sport/tennis/#&topic=sport/ /player1&topic=sport/tennis/player1"
    "&topic=sport",
    "/api/v1/stream?topic=a/ &topic= / &topic=a/b&topic=a",
    "/api/v1/stream?topic=/&topic=//#&topic=/ &topic= /",
    "/api/v1/stream?topic=$share/g/a/#&topic=$share//x&topic=$share/g&topic=$share/g/",
    "/api/v1/stream?topic=$share/g/$share/h/x&topic=$share/g+/x",
    "/api/v1/stream?topic=a/#/b&topic=a#&topic=a+/b&topic=#/",
    "/api/v1/stream?topic=  &topic= a&topic=a  /b",
    "/api/v1/stream?topic=$x/ &topic= /y&topic=$x/y",
    "/api/v1/stream?topic",
    "/api/v1/stream?=&&topic=&",
    "/publish/no/api/prefix",
    "/topics/x?filter=+",
    "?topic=a\x01b&topic=a\x7fb&topic=a\u0085b",
]
URLS_BYTES = [
    b"/api/v1/publish/bad/\xc0\xaf/utf8",
    b"/api/v1/publish/surrogate/\xed\xa0\x80",
    b"/api/v1/publish/nonchar/\xef\xbf\xbf/\xef\xb7\x90",
    b"/api/v1/publish/max/\xf4\x8f\xbf\xbd/over/\xf4\x90\x80\x80",
    b"/api/v1/publish/cut/\xe2\x82",
    b"/api/v1/stream?topic=a/b\x00/#&topic=c",
]


def url_seeds():
    out = {}
    for i, u in enumerate(URLS):
        out[f"url-{i:02d}.txt"] = u.encode()
    for i, u in enumerate(URLS_BYTES):
        out[f"url-bytes-{i:02d}.bin"] = u
    out["url-long-topic.txt"] = ("/api/v1/publish/" + "/".join(["level"] * 60)).encode()
    return out


# ---- publish bodies ----

def j(v):
    return json.dumps(v, ensure_ascii=False).encode()


def json_seeds():
    s = {
        "single": j({"topic": "sensors/kitchen/temp", "payload": "21.5"}),
        "qos-retain": j({"topic": "a/b", "payload": "on", "qos": 1, "retain": True}),
        "qos2": j({"topic": "a/b", "payload": "", "qos": 2, "retain": False}),
        "no-payload": j({"topic": "a"}),
        "payload-number": b'{"topic":"a","payload":21.3}',
        "payload-real-exp": b'{"topic":"a","payload":1e5}',
        "payload-real-tiny": b'{"topic":"a","payload":-1.5e-300}',
        "payload-neg-zero": b'{"topic":"a","payload":-0.0}',
        "payload-int-big": b'{"topic":"a","payload":-9223372036854775808}',
        "payload-object": b'{"topic":"a","payload":{"t":21.5,"u":"\\u00b0C","ok":true,'
                          b'"n":null,"l":[1,2,[3]]}}',
        "payload-array": b'{"topic":"a","payload":[true,false,null,"x\\ny"]}',
        "payload-escapes": b'{"topic":"a","payload":"tab\\t quote\\" nl\\n cr\\r nul\\u0000 '
                           b'\\u001f \\ud83d\\ude00 \\u2028"}',
        "payload-utf8": j({"topic": "maison/température", "payload": "21 °C ✓ 😀"}),
        "payload-base64": j({"topic": "bin", "payload_base64": "AAECAwT/"}),
        "payload-base64-unpadded": j({"topic": "bin", "payload_base64": "AAE"}),
        "payload-base64-empty": j({"topic": "bin", "payload_base64": ""}),
        "props-all": j({"topic": "req/svc", "payload": "{}", "qos": 1, "properties": {
            "content_type": "application/json", "response_topic": "resp/svc/1",
            "message_expiry_interval": 4294967295, "payload_format_indicator": 1,
            "correlation_data": "abc-123",
            "user_properties": [["trace", "1"], ["trace", "2"], ["", ""]]}}),
        "props-corr-base64": j({"topic": "t", "properties": {
            "correlation_data_base64": "AP8=", "user_properties": {"k": "v", "k2": "é"}}}),
        "props-empty": j({"topic": "t", "properties": {}}),
        "array": j([{"topic": "a", "payload": "1"}, {"topic": "b", "payload_base64": "Mg=="},
                    {"topic": "c", "payload": 3, "qos": 2, "retain": True,
                     "properties": {"content_type": "text/plain"}}]),
        "array-one": j([{"topic": "a"}]),
        # Refusals
        "err-empty": b"",
        "err-not-json": b"topic=a&payload=b",
        "err-truncated": b'{"topic":"a","payload":"x',
        "err-trailing": b'{"topic":"a"} {}',
        "err-scalar": b"42",
        "err-empty-array": b"[]",
        "err-too-many": j([{"topic": "a"}] * 9),
        "err-not-object-item": j([{"topic": "a"}, "b"]),
        "err-unknown-field": j({"topic": "a", "payload": "x", "qso": 1}),
        "err-topic-missing": j({"payload": "x"}),
        "err-topic-type": j({"topic": 5}),
        "err-topic-wild": j({"topic": "a/+/b"}),
        "err-topic-empty": j({"topic": ""}),
        "err-topic-nul": b'{"topic":"a\\u0000b"}',
        "err-topic-ctrl": b'{"topic":"a\\u0001b"}',
        "err-qos": j({"topic": "a", "qos": 3}),
        "err-qos-type": j({"topic": "a", "qos": "1"}),
        "err-retain": j({"topic": "a", "retain": "yes"}),
        "err-both-payloads": j({"topic": "a", "payload": "x", "payload_base64": "eA=="}),
        "err-base64": j({"topic": "a", "payload_base64": "A"}),
        "err-base64-bits": j({"topic": "a", "payload_base64": "AB=="}),
        "err-base64-space": j({"topic": "a", "payload_base64": "AA AA"}),
        "err-props-type": j({"topic": "a", "properties": []}),
        "err-prop-unknown": j({"topic": "a", "properties": {"topic_alias": 1}}),
        "err-prop-subid": j({"topic": "a", "properties": {"subscription_identifiers": [1]}}),
        "err-prop-pfi": j({"topic": "a", "properties": {"payload_format_indicator": 2}}),
        "err-prop-expiry": j({"topic": "a", "properties": {"message_expiry_interval": -1}}),
        "err-prop-response-wild": j({"topic": "a", "properties": {"response_topic": "r/#"}}),
        "err-prop-both-corr": j({"topic": "a", "properties": {
            "correlation_data": "x", "correlation_data_base64": "eA=="}}),
        "err-prop-user-ctrl": b'{"topic":"a","properties":{"user_properties":[["k","\\u0007"]]}}',
        "err-prop-user-shape": j({"topic": "a", "properties": {"user_properties": [["k"]]}}),
        "err-duplicate-key": b'{"topic":"a","topic":"b"}',
        "err-lone-surrogate": b'{"topic":"a","payload":"\\ud800"}',
        "err-bad-utf8": b'{"topic":"a","payload":"\xc0\xaf"}',
        "err-deep": b'{"topic":"a","payload":' + b"[" * 3000 + b"]" * 3000 + b"}",
        "err-long-field": j({"topic": "a", "x" * 300: 1}),
        # b64_decode()/b64_encode() on the whole input
        "b64-padded": b"aGVsbG8gd29ybGQ=",
        "b64-unpadded": b"aGVsbG8",
        "b64-all": b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    }
    out = {f"{name}.json": data for name, data in s.items()}
    # A message from the broker: topic length, property length, topic, properties, payload.
    def raw(topic, pbytes, payload):
        return bytes([len(topic), len(pbytes)]) + topic + pbytes + payload
    out["raw-binary.bin"] = raw(b"a/b", b"", b"\x00\x01\xfe\xff")
    out["raw-text.bin"] = raw(b"sensors/t", b"", "21 °C\n".encode())
    out["raw-props.bin"] = raw(b"t", p_str(0x03, "text/plain") + p_str(0x09, b"\xff\x00") +
                               p_pair("k", "v") + p_u32(0x02, 9) + p_byte(0x01, 1) +
                               p_str(0x08, "r") + p_varint(0x0B, 5) + p_u16(0x23, 2),
                               b"payload")
    out["raw-bad-topic.bin"] = raw(b"a\xff\x00\"\\\x7f", b"", b"\xe2\x82")
    return out


# ---- config files ----

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def config_seeds():
    with open(os.path.join(HERE, "..", "..", "config", "mqtt-web-bridge.json"), "rb") as f:
        shipped = f.read()
    tokens = {"auth": {"mode": "tokens", "tokens": [
        {"name": "alice", "sha256": SHA, "publish": ["users/{name}/#", "public/+/chat"],
         "subscribe": ["public/#", "$share/g/users/{name}/#"]},
        {"name": "bob.device-1_x", "sha256": SHA.upper(), "publish": [], "subscribe": ["#"]}]},
        "mqtt_credentials": "bridge"}
    s = {
        "shipped": shipped,
        "empty-object": b"{}",
        "tokens": j(tokens),
        "full": j({"listen": "[::1]:9001", "static_dir": "/srv/www", "log_level": "debug",
                   "broker": {"url": "mqtts://broker.example:8883", "client_id": "bridge",
                              "username": "u", "password": "p", "keepalive_s": 0,
                              "ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "k.pem",
                              "verify": False},
                   "tls": {"cert_file": "srv.pem", "key_file": "srv.key"},
                   "allowed_origins": ["https://a.example", "http://localhost:8080"],
                   "limits": {"max_connections": 1, "max_packet_bytes": 16,
                              "max_body_bytes": 268435456, "max_subscriptions": 1000000,
                              "max_queue_bytes": 17179869184, "requests_per_minute": 60},
                   "publish_timeout_ms": 3600000, "sse": {"heartbeat_s": 1, "replay": 0}}),
        "listen-ipv4": j({"listen": "0.0.0.0:1"}),
        "listen-host": j({"listen": "localhost:65535"}),
        "err-listen-port0": j({"listen": "127.0.0.1:0"}),
        "err-listen-port-big": j({"listen": "127.0.0.1:65536"}),
        "err-listen-ipv6-bare": j({"listen": "::1:8080"}),
        "err-listen-brackets": j({"listen": "[]:80"}),
        "err-listen-no-host": j({"listen": ":80"}),
        "err-listen-type": j({"listen": 8080}),
        "err-listen-newline": j({"listen": "a\nb"}),
        "err-unknown-key": j({"listn": "127.0.0.1:8080"}),
        "err-unknown-section-key": j({"broker": {"host": "x"}}),
        "err-unknown-key-newline": j({"a\nb": 1}),
        "err-section-type": j({"broker": []}),
        "err-string-type": j({"static_dir": 1}),
        "err-int-type": j({"broker": {"keepalive_s": "30"}}),
        "err-int-range": j({"limits": {"max_connections": 0}}),
        "err-int-real": j({"limits": {"max_packet_bytes": 1.5}}),
        "err-int-huge": b'{"limits":{"max_queue_bytes":99999999999999999999}}',
        "err-bool-type": j({"broker": {"verify": "yes"}}),
        "err-choice": j({"log_level": "verbose"}),
        "err-choice-type": j({"auth": {"mode": 1}}),
        "err-origins-type": j({"allowed_origins": "*"}),
        "err-origins-item": j({"allowed_origins": ["*", 1]}),
        "err-tokens-type": j({"auth": {"tokens": {}}}),
        "err-token-type": j({"auth": {"tokens": ["alice"]}}),
        "err-token-name": j({"auth": {"tokens": [{"name": "al ice", "sha256": SHA}]}}),
        "err-token-no-name": j({"auth": {"tokens": [{"sha256": SHA}]}}),
        "err-token-no-sha": j({"auth": {"tokens": [{"name": "a"}]}}),
        "err-token-sha-short": j({"auth": {"tokens": [{"name": "a", "sha256": SHA[:-1]}]}}),
        "err-token-sha-hex": j({"auth": {"tokens": [{"name": "a", "sha256": "g" * 64}]}}),
        "err-token-dup": j({"auth": {"tokens": [{"name": "a", "sha256": SHA},
                                                {"name": "a", "sha256": SHA}]}}),
        "err-token-filter": j({"auth": {"tokens": [{"name": "a", "sha256": SHA,
                                                    "publish": ["ok/#", "a/#/b"]}]}}),
        "err-token-filter-type": j({"auth": {"tokens": [{"name": "a", "sha256": SHA,
                                                         "subscribe": "a/#"}]}}),
        "err-token-unknown": j({"auth": {"tokens": [{"name": "a", "sha256": SHA,
                                                     "scope": "all"}]}}),
        "check-tokens-empty": j({"auth": {"mode": "tokens"}}),
        "check-bridge-needs-tokens": j({"mqtt_credentials": "bridge"}),
        "check-tls-half": j({"tls": {"cert_file": "c.pem"}}),
        "check-broker-tls-half": j({"broker": {"key_file": "k.pem"}}),
        "check-url-scheme": j({"broker": {"url": "http://x"}}),
        "check-url-no-host": j({"broker": {"url": "mqtt://"}}),
        "url-userinfo": j({"broker": {"url": "mqtt://us%65r:p%40ss%3Aw%2Frd%25@[::1]:1883"}}),
        "url-user-only": j({"broker": {"url": "ws://user@broker:9001/mqtt@x?a=b@c"}}),
        "check-url-conflict": j({"broker": {"url": "mqtt://:pw@h", "username": "u"}}),
        "check-url-escape": j({"broker": {"url": "mqtt://u:pw%4@h"}}),
        "check-url-raw-at": j({"broker": {"url": "mqtt://u:p@ss@h:1883"}}),
        "check-url-port": j({"broker": {"url": "mqtt://u:p/ss@h"}}),
        "mqtt-version": j({"broker": {"mqtt_version": "3.1.1"}}),
        "err-mqtt-version": j({"broker": {"mqtt_version": 5}}),
        "check-static-empty": j({"static_dir": ""}),
        "err-not-json": b"listen = 127.0.0.1:8080\n",
        "err-truncated": shipped[: len(shipped) // 2],
        "err-top-array": b"[]",
        "err-duplicate-key": b'{"listen":"a:1","listen":"b:2"}',
        "err-nul-string": b'{"static_dir":"a\\u0000b"}',
        "err-empty": b"",
    }
    return {f"{name}.json": data for name, data in s.items()}


def main():
    total = 0
    for target, seeds in (("codec", codec_seeds()), ("url", url_seeds()),
                          ("json", json_seeds()), ("config", config_seeds())):
        d = os.path.join(CORPUS, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        total += len(seeds)
        print(f"{target}: {len(seeds)} seeds")
    print(f"{total} seeds written under {CORPUS}")


if __name__ == "__main__":
    main()
