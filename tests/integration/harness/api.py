"""HTTP clients for the REST API, the SSE stream and /metrics (these exist only on the bridge):
http.client requests, keep-alive, raw requests whose answer may come before the body is taken,
an incrementally read event stream with bounded waits, and a Prometheus text parser."""

import base64
import http.client
import json
import re
import select
import socket
import time
import urllib.parse

from .settings import HOST, QUIET, TIMEOUT


def quote_topic(topic):
    """@topic as a URL path: UTF-8 percent-encoded, '/' kept ('+' %2B, '#' %23, ' ' %20)."""
    return urllib.parse.quote(topic, safe="/")


def quote_query(value):
    """A query value with everything but unreserved characters percent-encoded ('+' is %2B)."""
    return urllib.parse.quote(value, safe="")


def first_header(headers, name, default=None):
    """The value of the first of @headers ((name, value) pairs) called @name, case-insensitive;
    else @default."""
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return default


class HttpResponse:
    """One HTTP answer: .status, .reason, .headers (a list of (name, value)), .body (bytes),
    .elapsed (seconds from sending the request to the end of the body)."""

    def __init__(self, status, reason, headers, body, elapsed=0.0):
        self.status = status
        self.reason = reason
        self.headers = list(headers)
        self.body = bytes(body)
        self.elapsed = elapsed

    def header(self, name, default=None):
        """The first header @name (case-insensitive), else @default."""
        return first_header(self.headers, name, default)

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def content_type(self):
        return self.header("Content-Type")

    @property
    def mime(self):
        """The media type of Content-Type without parameters, lower case ('' when none)."""
        return (self.content_type or "").split(";")[0].strip().lower()

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise AssertionError("answer is not JSON (%s): %r" % (e, self))

    def __repr__(self):
        return "<HTTP %s %s %r body=%r>" % (self.status, self.reason, self.headers, self.body[:300])


def http_request(port, method, path, body=None, headers=None, timeout=TIMEOUT, conn=None):
    """One request with http.client, on @conn (keep-alive) or on a fresh connection closed after."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    t0 = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return HttpResponse(resp.status, resp.reason, resp.getheaders(), data,
                            time.monotonic() - t0)
    except socket.timeout:
        raise AssertionError("%s %s: no complete answer within %.1fs" % (method, path, timeout))
    except (http.client.RemoteDisconnected, ConnectionResetError) as e:
        raise AssertionError("%s %s: the server closed the connection without an answer (%s)"
                             % (method, path, e))
    finally:
        if own:
            conn.close()


class KeepAlive:
    """One HTTP/1.1 connection for several requests. It never reconnects by itself: a request after
    the server closed the connection fails, and .local_port() tells the connection apart."""

    def __init__(self, port, timeout=TIMEOUT):
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.conn.connect()
        self.conn.auto_open = 0
        self.port = self.conn.sock.getsockname()[1]

    def request(self, method, path, body=None, headers=None):
        if self.conn.sock is None:
            raise AssertionError("the server closed the keep-alive connection before %s %s"
                                 % (method, path))
        if self.conn.sock.getsockname()[1] != self.port:
            raise AssertionError("a new connection was opened")
        try:
            return http_request(None, method, path, body, headers, conn=self.conn)
        except http.client.NotConnected:
            raise AssertionError("the server closed the keep-alive connection before %s %s"
                                 % (method, path))

    def close(self):
        self.conn.close()


def _dechunk(data):
    """(body, complete) of a chunked body prefix."""
    out = bytearray()
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return bytes(out), False
        size = int(data[pos:eol].split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return bytes(out), True
        if len(data) < eol + 2 + size + 2:
            out += data[eol + 2:eol + 2 + size]
            return bytes(out), False
        out += data[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2


def _parse_head(buf):
    """(status, reason, headers, rest) when @buf holds a whole response head, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise AssertionError("bad HTTP status line %r" % lines[0])
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers, buf[end + 4:]


def _parse_response(buf, eof=False):
    head = _parse_head(buf)
    if head is None:
        return None
    status, reason, headers, rest = head
    resp = HttpResponse(status, reason, headers, b"")
    length = resp.header("Content-Length")
    if (resp.header("Transfer-Encoding") or "").lower() == "chunked":
        body, complete = _dechunk(rest)
        if not complete and not eof:
            return None
        resp.body = body
    elif length is not None:
        if len(rest) < int(length):
            return None if not eof else HttpResponse(status, reason, headers, rest)
        resp.body = rest[:int(length)]
    elif not eof and status not in (204, 304) and not 100 <= status < 200:
        return None
    else:
        resp.body = rest
    return resp


def raw_http(port, data, timeout=TIMEOUT):
    """Sends the request bytes @data on a fresh connection while reading, and returns the first
    final answer (HttpResponse, interim 1xx skipped) even when the server answers before taking
    the whole body. .unsent is how many bytes of @data the server never took."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setblocking(False)
    t0 = time.monotonic()
    deadline = t0 + timeout
    sent, got, eof = 0, b"", False
    try:
        while True:
            resp = _parse_response(got, eof)
            if resp is not None and 100 <= resp.status < 200:
                got = got[got.find(b"\r\n\r\n") + 4:]
                continue
            if resp is not None:
                break
            if eof:
                raise AssertionError("connection closed without a complete answer: %r" % got[:300])
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no complete HTTP answer within %.1fs (got %r)"
                                     % (timeout, got[:300]))
            r, w, _ = select.select([sock], [sock] if sent < len(data) else [], [], left)
            if r:
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    chunk = None
                except ConnectionResetError:
                    chunk = b""
                if chunk == b"":
                    eof = True
                elif chunk:
                    got += chunk
            if w:
                try:
                    sent += sock.send(data[sent:sent + 65536])
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    data = data[:sent]
        resp.elapsed = time.monotonic() - t0
        resp.unsent = len(data) - sent
        return resp
    finally:
        sock.close()


class SseEvent:
    """One dispatched event: .id, .data (str), .raw (the block's bytes, blank line included),
    .t (time.monotonic() of arrival); .json, .topic and .payload (bytes) decode the data."""

    def __init__(self, id_, data, raw, t):
        self.id = id_
        self.data = data
        self.raw = raw
        self.t = t
        self._json = None

    @property
    def json(self):
        if self._json is None:
            try:
                self._json = json.loads(self.data)
            except ValueError as e:
                raise AssertionError("event data is not JSON (%s): %r" % (e, self.data))
        return self._json

    @property
    def topic(self):
        return self.json.get("topic")

    @property
    def payload(self):
        """The payload bytes, from "payload" (UTF-8 text) or "payload_base64"."""
        j = self.json
        if "payload" in j and "payload_base64" in j:
            raise AssertionError("both payload and payload_base64 in %r" % self.data)
        if "payload" in j:
            return j["payload"].encode("utf-8")
        if "payload_base64" in j:
            return base64.b64decode(j["payload_base64"], validate=True)
        raise AssertionError("no payload in %r" % self.data)

    def __repr__(self):
        return "<SseEvent %r>" % self.raw[:200]


class SseStream:
    """GET @path on a raw socket, then the text/event-stream read incrementally with bounded
    waits. .status/.headers/.header(); for a status other than 200, .response holds the whole
    answer. .body is every body byte so far (chunked decoding done), .comments the comment lines
    with their arrival times, .retry the last retry: value. With read_head=False nothing is
    read at all (a slow reader); @rcvbuf shrinks the socket's receive buffer."""

    def __init__(self, port, path, headers=None, rcvbuf=None, timeout=TIMEOUT, read_head=True):
        self.path = path
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((HOST, port))
        req = "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n" % (path, HOST, port)
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        self.sock.sendall((req + "\r\n").encode("utf-8"))
        self.status = None
        self.headers = []
        self.response = None
        self.body = bytearray()
        self.closed = False
        self.events = []          # dispatched, not yet taken
        self.received = 0         # events dispatched in all
        self.comments = []        # (line bytes, time)
        self.retry = None
        self._in = b""
        self._chunked = False
        self._raw_body = b""
        self._line = b""
        self._block = []
        self._block_id = None
        self._block_data = []
        if read_head:
            self.read_head(timeout)

    def header(self, name, default=None):
        return first_header(self.headers, name, default)

    def _read(self, deadline):
        """One recv until @deadline: the bytes, or None (nothing in time, or closed)."""
        left = deadline - time.monotonic()
        if left <= 0 or self.closed:
            return None
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(262144)
        except socket.timeout:
            return None
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return None
        return data

    def _recv(self, deadline):
        """Reads once into the body (until @deadline); False when nothing came in time."""
        data = self._read(deadline)
        if data is None:
            return False
        self._feed(data)
        return True

    def read_head(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            head = _parse_head(self._in)
            if head is not None:
                break
            if self.closed:
                raise AssertionError("stream %s closed before its head: %r" % (self.path, self._in))
            data = self._read(deadline)
            if data is not None:
                self._in += data
            elif time.monotonic() >= deadline:
                raise AssertionError("no response head for %s within %.1fs" % (self.path, timeout))
        status, _reason, headers, rest = head
        if status != 200:
            # an error answer: read it whole
            while True:
                resp = _parse_response(self._in, eof=self.closed)
                if resp is not None or time.monotonic() >= deadline:
                    break
                data = self._read(deadline)
                if data is not None:
                    self._in += data
            self.response = resp or _parse_response(self._in, eof=True)
            self.status, self.headers = status, headers
            return self
        self.status, self.headers = status, headers
        self._chunked = (self.header("Transfer-Encoding") or "").lower() == "chunked"
        self._in = b""
        self._feed(rest)
        return self

    def _feed(self, data):
        if self._chunked:
            self._raw_body += data
            body, _ = _dechunk(self._raw_body)
            new = body[len(self.body):]
        else:
            new = data
        self.body += new
        self._line += new
        while True:
            nl = self._line.find(b"\n")
            if nl < 0:
                break
            line, self._line = self._line[:nl], self._line[nl + 1:]
            self._on_line(line)

    def _on_line(self, line):
        now = time.monotonic()
        if line == b"":
            raw = b"".join(x + b"\n" for x in self._block) + b"\n"
            if self._block_data:
                self.events.append(SseEvent(self._block_id, "\n".join(self._block_data), raw, now))
                self.received += 1
            self._block, self._block_id, self._block_data = [], None, []
            return
        self._block.append(line)
        if line.startswith(b":"):
            self.comments.append((line, now))
            return
        name, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        text = value.decode("utf-8", "replace")
        if name == b"id":
            self._block_id = text
        elif name == b"data":
            self._block_data.append(text)
        elif name == b"retry":
            self.retry = text

    def next_event(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.events:
            if self.closed:
                raise AssertionError("stream %s closed (after %d events)"
                                     % (self.path, self.received))
            if not self._recv(deadline) and time.monotonic() >= deadline:
                raise AssertionError("no event on %s within %.1fs" % (self.path, timeout))
        return self.events.pop(0)

    def get_events(self, n, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            try:
                out.append(self.next_event(max(0.0, deadline - time.monotonic())))
            except AssertionError as e:
                raise AssertionError("%d of %d events: %s; got %r" % (len(out), n, e,
                                     [x.data[:80] for x in out[-5:]]))
        return out

    def take(self, n, timeout=TIMEOUT):
        """Up to @n events, whatever came within @timeout (never raises: compare the result)."""
        deadline = time.monotonic() + timeout
        while len(self.events) < n and not self.closed and time.monotonic() < deadline:
            self._recv(deadline)
        out, self.events = self.events[:n], self.events[n:]
        return out

    def poll_for(self, pred, timeout, dropped=None):
        """Takes events until one satisfies @pred (returned) or @timeout passes (None); the
        others taken are appended to @dropped when given."""
        deadline = time.monotonic() + timeout
        while True:
            while self.events:
                ev = self.events.pop(0)
                if pred(ev):
                    return ev
                if dropped is not None:
                    dropped.append(ev)
            if self.closed or time.monotonic() >= deadline:
                return None
            self._recv(deadline)

    def read_for(self, seconds):
        """Reads whatever comes for @seconds; the events taken (comments are in .comments)."""
        deadline = time.monotonic() + seconds
        while not self.closed and time.monotonic() < deadline:
            self._recv(deadline)
        out, self.events = self.events, []
        return out

    def assert_no_event(self, within=QUIET):
        got = self.read_for(within)
        if got:
            raise AssertionError("unexpected events on %s: %r" % (self.path, got[:5]))

    def wait_closed(self, timeout=TIMEOUT):
        """True when the server ended the stream within @timeout (what came is kept)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._recv(deadline)
        return self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def prom_samples(text):
    """{(name, labels): value} of a Prometheus text exposition; AssertionError on a bad line."""
    out = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+-?\d+)?$')
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            if not re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* ", line) \
                    and not line.startswith("# "):
                raise AssertionError("bad Prometheus comment line %r" % line)
            continue
        m = line_re.match(line)
        if not m:
            raise AssertionError("bad Prometheus sample line %r" % line)
        try:
            value = float(m.group(3))
        except ValueError:
            raise AssertionError("bad Prometheus value in %r" % line)
        out[(m.group(1), m.group(2) or "")] = value
    return out


def metric(port, name, labels=""):
    """The sample @name with @labels (as written: '{path="broker_to_hub"}') of the bridge's
    /metrics on @port; 0 when it has none."""
    resp = http_request(port, "GET", "/metrics")
    if resp.status != 200:
        raise AssertionError("GET /metrics: %r" % resp)
    return prom_samples(resp.body.decode("utf-8")).get((name, labels), 0)
