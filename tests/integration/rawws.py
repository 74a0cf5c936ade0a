"""Raw WebSocket client and MQTT 3.1/3.1.1/5.0 packet builder and reader.

The integration tests use paho-mqtt for well-formed traffic; this module is for what paho will not
send: packets split over frames, several packets in one frame, text frames, continuation frames, bad
remaining lengths, bad UTF-8, reserved flags, QoS 3, packet id 0, duplicate v5 properties, and
clients that never acknowledge. Standard library only.
"""

import base64
import hashlib
import os
import select
import socket
import struct
import time

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# MQTT protocol levels
V31, V311, V5 = 3, 4, 5

# MQTT packet types
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = (
    8, 9, 10, 11, 12, 13, 14, 15)

PACKET_NAMES = {
    CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK",
    PUBREC: "PUBREC", PUBREL: "PUBREL", PUBCOMP: "PUBCOMP", SUBSCRIBE: "SUBSCRIBE",
    SUBACK: "SUBACK", UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBACK: "UNSUBACK", PINGREQ: "PINGREQ",
    PINGRESP: "PINGRESP", DISCONNECT: "DISCONNECT", AUTH: "AUTH",
}

# v5 property identifiers
PAYLOAD_FORMAT_INDICATOR = 0x01
MESSAGE_EXPIRY_INTERVAL = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_IDENTIFIER = 0x0B
SESSION_EXPIRY_INTERVAL = 0x11
ASSIGNED_CLIENT_IDENTIFIER = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16
REQUEST_PROBLEM_INFORMATION = 0x17
WILL_DELAY_INTERVAL = 0x18
REQUEST_RESPONSE_INFORMATION = 0x19
RESPONSE_INFORMATION = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A

_BYTE, _INT2, _INT4, _VARINT, _STR, _BIN, _PAIR = range(7)
PROPERTY_TYPES = {
    PAYLOAD_FORMAT_INDICATOR: _BYTE, MESSAGE_EXPIRY_INTERVAL: _INT4, CONTENT_TYPE: _STR,
    RESPONSE_TOPIC: _STR, CORRELATION_DATA: _BIN, SUBSCRIPTION_IDENTIFIER: _VARINT,
    SESSION_EXPIRY_INTERVAL: _INT4, ASSIGNED_CLIENT_IDENTIFIER: _STR, SERVER_KEEP_ALIVE: _INT2,
    AUTHENTICATION_METHOD: _STR, AUTHENTICATION_DATA: _BIN, REQUEST_PROBLEM_INFORMATION: _BYTE,
    WILL_DELAY_INTERVAL: _INT4, REQUEST_RESPONSE_INFORMATION: _BYTE, RESPONSE_INFORMATION: _STR,
    SERVER_REFERENCE: _STR, REASON_STRING: _STR, RECEIVE_MAXIMUM: _INT2,
    TOPIC_ALIAS_MAXIMUM: _INT2, TOPIC_ALIAS: _INT2, MAXIMUM_QOS: _BYTE, RETAIN_AVAILABLE: _BYTE,
    USER_PROPERTY: _PAIR, MAXIMUM_PACKET_SIZE: _INT4, WILDCARD_SUBSCRIPTION_AVAILABLE: _BYTE,
    SUBSCRIPTION_IDENTIFIER_AVAILABLE: _BYTE, SHARED_SUBSCRIPTION_AVAILABLE: _BYTE,
}


class HandshakeError(Exception):
    """The server did not answer the upgrade with 101 (status and headers kept)."""

    def __init__(self, status, headers, body=b""):
        super().__init__("WebSocket upgrade refused: HTTP %s" % status)
        self.status = status
        self.headers = headers
        self.body = body


class Closed(Exception):
    """The connection ended. code/reason are set when a WebSocket close frame arrived."""

    def __init__(self, code=None, reason=b"", close_frame=False):
        super().__init__("connection closed (close frame: %s, code %s, reason %r)"
                         % (close_frame, code, reason))
        self.code = code
        self.reason = reason
        self.close_frame = close_frame


class ProtocolViolation(Exception):
    """The server sent something a WebSocket or MQTT client must not accept."""


# ---------------------------------------------------------------------------------------------
# WebSocket


class WSClient:
    """A minimal RFC 6455 client. Client frames are masked unless told otherwise."""

    def __init__(self, host, port, path="/mqtt", subprotocols=("mqtt",), timeout=5.0,
                 headers=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._rbuf = bytearray()
        self.close_code = None
        self.close_reason = b""
        self.eof = False
        key = base64.b64encode(os.urandom(16))
        lines = [
            "GET %s HTTP/1.1" % path,
            "Host: %s:%d" % (host, port),
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: %s" % key.decode(),
            "Sec-WebSocket-Version: 13",
        ]
        if subprotocols:
            lines.append("Sec-WebSocket-Protocol: %s" % ", ".join(subprotocols))
        for name, value in (headers or {}).items():
            lines.append("%s: %s" % (name, value))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._rbuf:
            if len(self._rbuf) > 65536:
                raise ProtocolViolation("upgrade response headers too long")
            try:
                chunk = self._recv_some(deadline)
            except BaseException:
                self.sock.close()
                raise
            if not chunk:
                self.sock.close()
                raise HandshakeError(None, {}, bytes(self._rbuf))
        head, _, rest = bytes(self._rbuf).partition(b"\r\n\r\n")
        self._rbuf = bytearray(rest)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        self.headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if self.status != 101:
            body = bytes(self._rbuf)
            self.sock.close()
            raise HandshakeError(self.status, self.headers, body)
        expected = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        if self.headers.get("sec-websocket-accept") != expected:
            self.sock.close()
            raise ProtocolViolation("bad Sec-WebSocket-Accept %r"
                                    % self.headers.get("sec-websocket-accept"))
        self.subprotocol = self.headers.get("sec-websocket-protocol")

    # -- low level ------------------------------------------------------------------------

    def _recv_some(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out waiting for data")
        ready, _, _ = select.select([self.sock], [], [], remaining)
        if not ready:
            raise TimeoutError("timed out waiting for data")
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if chunk:
            self._rbuf += chunk
        else:
            self.eof = True
        return chunk

    def send_raw(self, data):
        """Bytes straight onto the TCP stream (for hand-made frames)."""
        self.sock.sendall(data)

    @staticmethod
    def frame(opcode, payload, fin=True, mask=True, rsv=0):
        payload = bytes(payload)
        b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
        else:
            head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
        if not mask:
            return head + payload
        key = os.urandom(4)
        # XOR with a repeated key; int arithmetic keeps this fast for 60 KB payloads
        rep = (key * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(rep, "big")).to_bytes(n, "big") \
            if n else b""
        return head + key + masked

    def send_frame(self, opcode, payload, fin=True, mask=True, rsv=0):
        self.sock.sendall(self.frame(opcode, payload, fin, mask, rsv))

    def send_binary(self, data):
        self.send_frame(OP_BINARY, data)

    def send_text(self, data):
        self.send_frame(OP_TEXT, data)

    def send_fragmented(self, data, sizes, opcode=OP_BINARY):
        """One WebSocket message as several frames (first @opcode, then continuation frames)."""
        pos = 0
        chunks = []
        for size in sizes:
            chunks.append(data[pos:pos + size])
            pos += size
        if pos < len(data):
            chunks.append(data[pos:])
        for i, chunk in enumerate(chunks):
            self.send_frame(opcode if i == 0 else OP_CONT, chunk, fin=(i == len(chunks) - 1))

    def send_close(self, code=1000, reason=b""):
        payload = struct.pack("!H", code) + reason if code is not None else b""
        try:
            self.send_frame(OP_CLOSE, payload)
        except OSError:
            pass

    def _parse_frame(self):
        """A complete frame at the head of the buffer, consumed; None when more bytes are needed."""
        buf = self._rbuf
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        if b1 & 0x80:
            raise ProtocolViolation("server frame is masked")
        if b0 & 0x70:
            raise ProtocolViolation("server frame has RSV bits 0x%02x" % b0)
        n, pos = b1 & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                return None
            n, pos = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n, pos = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < pos + n:
            return None
        payload = bytes(buf[pos:pos + n])
        del buf[:pos + n]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_frame(self, timeout=5.0):
        """(fin, opcode, payload) of the next frame. Raises TimeoutError, or Closed at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._parse_frame()
            if frame is not None:
                return frame
            if self.eof or not self._recv_some(deadline):
                raise Closed(self.close_code, self.close_reason, self.close_code is not None)

    def recv_message(self, timeout=5.0):
        """(opcode, payload) of the next data message, continuation frames joined.

        Pings are answered. A close frame is recorded, answered and raised as Closed.
        """
        deadline = time.monotonic() + timeout
        opcode = None
        parts = []
        while True:
            fin, op, payload = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if op == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.close_code = code if code is not None else 1005
                self.close_reason = payload[2:]
                self.send_close(code if code is not None else None)
                raise Closed(self.close_code, self.close_reason, True)
            if op == OP_CONT:
                if opcode is None:
                    raise ProtocolViolation("continuation frame without a message")
            elif op in (OP_TEXT, OP_BINARY):
                if opcode is not None:
                    raise ProtocolViolation("new data frame inside a fragmented message")
                opcode = op
            else:
                raise ProtocolViolation("unknown opcode 0x%x" % op)
            parts.append(payload)
            if fin:
                return opcode, b"".join(parts)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# MQTT encoding


def varint(n):
    if n < 0 or n > 268435455:
        raise ValueError("varint out of range: %d" % n)
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        if n:
            byte |= 0x80
        out.append(byte)
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def mqtt_str(s):
    """UTF-8 string field; bytes are taken as they are (for invalid UTF-8)."""
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return u16(len(b)) + b


def mqtt_bin(b):
    b = bytes(b)
    return u16(len(b)) + b


def properties(props):
    """Encode a list of (id, value) pairs (a list, so a test can repeat an id).

    USER_PROPERTY values are (name, value) pairs; ids without a known type take bytes as they are.
    """
    out = bytearray()
    for pid, value in props or ():
        out += varint(pid)
        kind = PROPERTY_TYPES.get(pid)
        if kind == _BYTE:
            out.append(value)
        elif kind == _INT2:
            out += u16(value)
        elif kind == _INT4:
            out += u32(value)
        elif kind == _VARINT:
            out += varint(value)
        elif kind == _STR:
            out += mqtt_str(value)
        elif kind == _BIN:
            out += mqtt_bin(value)
        elif kind == _PAIR:
            out += mqtt_str(value[0]) + mqtt_str(value[1])
        else:
            out += bytes(value)
    return varint(len(out)) + bytes(out)


def packet(first_byte, body):
    """A fixed header with a correct remaining length, then @body."""
    return bytes([first_byte]) + varint(len(body)) + bytes(body)


def connect(client_id="", version=V311, clean=True, keepalive=60, username=None, password=None,
            will=None, props=None, protocol_name=None, reserved_flag=False):
    """CONNECT. @will: dict(topic, payload, qos=0, retain=False, props=[...]) or None."""
    if protocol_name is None:
        protocol_name = "MQIsdp" if version == V31 else "MQTT"
    flags = 0x02 if clean else 0
    if reserved_flag:
        flags |= 0x01
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = mqtt_str(protocol_name) + bytes([version, flags]) + u16(keepalive)
    if version == V5:
        body += properties(props)
    body += mqtt_str(client_id)
    if will is not None:
        if version == V5:
            body += properties(will.get("props"))
        body += mqtt_str(will["topic"]) + mqtt_bin(will.get("payload", b""))
    if username is not None:
        body += mqtt_str(username)
    if password is not None:
        body += mqtt_bin(password.encode() if isinstance(password, str) else password)
    return packet(CONNECT << 4, body)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None, props=None,
            version=V311):
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = mqtt_str(topic)
    if qos:
        body += u16(pid if pid is not None else 1)
    if version == V5:
        body += properties(props)
    body += payload.encode() if isinstance(payload, str) else bytes(payload)
    return packet((PUBLISH << 4) | flags, body)


def _ack(ptype, flags, pid, rc, props, version):
    body = u16(pid)
    if version == V5 and (rc is not None or props):
        body += bytes([rc or 0])
        if props:
            body += properties(props)
    return packet((ptype << 4) | flags, body)


def puback(pid, rc=None, props=None, version=V311):
    return _ack(PUBACK, 0, pid, rc, props, version)


def pubrec(pid, rc=None, props=None, version=V311):
    return _ack(PUBREC, 0, pid, rc, props, version)


def pubrel(pid, rc=None, props=None, version=V311):
    return _ack(PUBREL, 2, pid, rc, props, version)


def pubcomp(pid, rc=None, props=None, version=V311):
    return _ack(PUBCOMP, 0, pid, rc, props, version)


def subscribe(pid, filters, props=None, version=V311, flags=0x02):
    """@filters: list of (filter, options byte) or (filter, qos)."""
    body = u16(pid)
    if version == V5:
        body += properties(props)
    for topic_filter, options in filters:
        body += mqtt_str(topic_filter) + bytes([options])
    return packet((SUBSCRIBE << 4) | flags, body)


def sub_options(qos=0, no_local=False, retain_as_published=False, retain_handling=0):
    return qos | (0x04 if no_local else 0) | (0x08 if retain_as_published else 0) | \
        (retain_handling << 4)


def unsubscribe(pid, filters, props=None, version=V311, flags=0x02):
    body = u16(pid)
    if version == V5:
        body += properties(props)
    for topic_filter in filters:
        body += mqtt_str(topic_filter)
    return packet((UNSUBSCRIBE << 4) | flags, body)


def pingreq():
    return packet(PINGREQ << 4, b"")


def disconnect(rc=None, props=None, version=V311):
    body = b""
    if version == V5 and (rc is not None or props):
        body = bytes([rc or 0])
        if props:
            body += properties(props)
    return packet(DISCONNECT << 4, body)


# ---------------------------------------------------------------------------------------------
# MQTT decoding


class Packet:
    """A decoded server packet. Fields depend on the type; raw keeps the whole packet."""

    def __init__(self, ptype, flags, body, raw):
        self.type = ptype
        self.flags = flags
        self.body = body
        self.raw = raw
        self.props = []
        self.rc = None
        self.pid = None

    def prop(self, pid, default=None):
        for key, value in self.props:
            if key == pid:
                return value
        return default

    def props_all(self, pid):
        return [value for key, value in self.props if key == pid]

    def __repr__(self):
        fields = {k: v for k, v in self.__dict__.items() if k not in ("body", "raw")}
        if "payload" in fields and len(fields["payload"]) > 40:
            fields["payload"] = fields["payload"][:40] + b"..."
        return "<%s %r>" % (PACKET_NAMES.get(self.type, self.type), fields)


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def left(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n > self.left():
            raise ProtocolViolation("packet too short")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def byte(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("!H", self.take(2))[0]

    def u32(self):
        return struct.unpack("!I", self.take(4))[0]

    def varint(self):
        value, mult = 0, 1
        for _ in range(4):
            b = self.byte()
            value += (b & 0x7F) * mult
            if not b & 0x80:
                return value
            mult *= 128
        raise ProtocolViolation("varint longer than 4 bytes")

    def string(self):
        return self.take(self.u16()).decode("utf-8")

    def binary(self):
        return self.take(self.u16())

    def properties(self):
        n = self.varint()
        end = self.pos + n
        if end > len(self.data):
            raise ProtocolViolation("property length past the packet")
        out = []
        while self.pos < end:
            pid = self.varint()
            kind = PROPERTY_TYPES.get(pid)
            if kind == _BYTE:
                value = self.byte()
            elif kind == _INT2:
                value = self.u16()
            elif kind == _INT4:
                value = self.u32()
            elif kind == _VARINT:
                value = self.varint()
            elif kind == _STR:
                value = self.string()
            elif kind == _BIN:
                value = self.binary()
            elif kind == _PAIR:
                value = (self.string(), self.string())
            else:
                raise ProtocolViolation("unknown property 0x%02x" % pid)
            out.append((pid, value))
        if self.pos != end:
            raise ProtocolViolation("properties overrun their length")
        return out


def decode(raw, version):
    """Decode one complete packet (fixed header included)."""
    r = _Reader(raw)
    first = r.byte()
    r.varint()
    body = raw[r.pos:]
    p = Packet(first >> 4, first & 0x0F, body, raw)
    r = _Reader(body)
    t = p.type
    if t == CONNACK:
        p.session_present = bool(r.byte() & 1)
        p.rc = r.byte()
        if version == V5:
            p.props = r.properties()
    elif t == PUBLISH:
        p.qos = (p.flags >> 1) & 3
        p.dup = bool(p.flags & 8)
        p.retain = bool(p.flags & 1)
        p.topic = r.string()
        if p.qos:
            p.pid = r.u16()
        if version == V5:
            p.props = r.properties()
        p.payload = r.take(r.left())
    elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        p.pid = r.u16()
        p.rc = 0
        if version == V5 and r.left():
            p.rc = r.byte()
            if r.left():
                p.props = r.properties()
    elif t in (SUBACK, UNSUBACK):
        p.pid = r.u16()
        if version == V5:
            p.props = r.properties()
        p.codes = list(r.take(r.left()))
    elif t == DISCONNECT:
        p.rc = 0
        if version == V5 and r.left():
            p.rc = r.byte()
            if r.left():
                p.props = r.properties()
    elif t == AUTH:
        p.rc = 0
        if r.left():
            p.rc = r.byte()
            if r.left():
                p.props = r.properties()
    return p


def split_packet(buf):
    """Length of the first complete packet in @buf, or 0 when more bytes are needed."""
    if len(buf) < 2:
        return 0
    value, mult = 0, 1
    for i in range(1, 5):
        if i >= len(buf):
            return 0
        b = buf[i]
        value += (b & 0x7F) * mult
        if not b & 0x80:
            total = 1 + i + value
            return total if len(buf) >= total else 0
        mult *= 128
    raise ProtocolViolation("server sent a remaining length longer than 4 bytes")


class MQTTConn:
    """MQTT packets over a WSClient. Every received packet is also kept in .received."""

    def __init__(self, ws, version=V311):
        self.ws = ws
        self.version = version
        self._buf = bytearray()
        self.received = []
        self.text_frames = 0

    def send(self, data):
        self.ws.send_binary(data)

    def recv(self, timeout=5.0):
        """The next packet. Raises TimeoutError, or Closed when the connection ends."""
        deadline = time.monotonic() + timeout
        while True:
            n = split_packet(self._buf)
            if n:
                raw = bytes(self._buf[:n])
                del self._buf[:n]
                p = decode(raw, self.version)
                self.received.append(p)
                return p
            opcode, payload = self.ws.recv_message(max(0.0, deadline - time.monotonic()))
            if opcode != OP_BINARY:
                self.text_frames += 1
                raise ProtocolViolation("server sent a non-binary data frame (opcode %d)" % opcode)
            self._buf += payload

    def expect(self, ptype, timeout=5.0):
        p = self.recv(timeout)
        if p.type != ptype:
            raise AssertionError("expected %s, got %r" % (PACKET_NAMES[ptype], p))
        return p

    def wait_closed(self, timeout=5.0):
        """Read until the connection ends. Returns the packets that arrived before the end.

        Raises TimeoutError when it is still open after @timeout.
        """
        deadline = time.monotonic() + timeout
        got = []
        while True:
            try:
                got.append(self.recv(max(0.0, deadline - time.monotonic())))
            except Closed:
                return got

    def quiet_for(self, seconds):
        """Packets arriving within @seconds (an empty list when none did); Closed propagates."""
        deadline = time.monotonic() + seconds
        got = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return got
            try:
                got.append(self.recv(remaining))
            except TimeoutError:
                return got

    def close(self):
        self.ws.close()
