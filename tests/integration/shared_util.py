"""What every file of shared sessions (test_shared.py, test_shared_delivery.py,
test_shared_session.py) builds on: a bridge config in mqtt_sessions "auto" and SharedCase, whose
raw-client helpers subscribe, acknowledge and collect as a browser would. test_shared.py's
docstring says what these files check and how."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import rawws as r  # noqa: E402

AUTO = {"mqtt_sessions": "auto"}


def auto(**extra):
    """A bridge config in mqtt_sessions "auto" with @extra keys."""
    return dict(extra, mqtt_sessions="auto")


class SharedCase(h.IntegrationCase):
    """The bridge in "auto"; its hub is up before the first test (a shared CONNECT while it is
    not is "server unavailable")."""
    bridge_config = AUTO

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if h.TARGET == "bridge" and cls.with_broker:
            h.ApiCase.wait_hub(cls.stack.bridge.port)

    # raw clients --------------------------------------------------------------------------

    def v5(self, client_id=None, **kw):
        return self.raw(r.V5, client_id, **kw)

    def v311(self, client_id=None, **kw):
        return self.raw(r.V311, client_id, **kw)

    def sub(self, conn, filters, pid=1, props=None):
        """SUBSCRIBE @filters ([(filter, options)] or one filter at QoS 1); the SUBACK's codes."""
        if isinstance(filters, str):
            filters = [(filters, 1)]
        conn.send(r.subscribe(pid, filters, props=props, version=conn.version))
        ack = conn.expect(r.SUBACK)
        self.assertEqual(ack.pid, pid, repr(ack))
        return ack.codes

    def unsub(self, conn, filters, pid=2):
        conn.send(r.unsubscribe(pid, filters, version=conn.version))
        ack = conn.expect(r.UNSUBACK)
        self.assertEqual(ack.pid, pid, repr(ack))
        return ack.codes

    def handle(self, conn, p, out):
        """Acknowledges one received packet as a client would: PUBLISH QoS 1 PUBACK, QoS 2
        PUBREC, PUBREL PUBCOMP. PUBLISHes go to @out, PUBACK / PUBCOMP (of the client's own
        publishes) to conn.acks; anything else fails."""
        if p.type == r.PUBLISH:
            out.append(p)
            if p.qos == 1:
                conn.send(r.puback(p.pid, version=conn.version))
            elif p.qos == 2:
                conn.send(r.pubrec(p.pid, version=conn.version))
        elif p.type == r.PUBREL:
            conn.send(r.pubcomp(p.pid, version=conn.version))
        elif p.type in (r.PUBACK, r.PUBCOMP):
            conn.__dict__.setdefault("acks", []).append(p)
        else:
            self.fail("unexpected %r" % p)

    def collect(self, conn, n, timeout=h.TIMEOUT):
        """The next @n PUBLISHes (acknowledged, QoS 2 flows completed as they come)."""
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            try:
                p = conn.recv(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self.fail("%d of %d PUBLISHes within %.1fs: %r" % (len(out), n, timeout, out))
            self.handle(conn, p, out)
        return out

    def settle(self, conn, within=h.QUIET):
        """Every PUBLISH that arrives within @within, each acknowledged as it comes; [] when
        none."""
        deadline = time.monotonic() + within
        out = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                p = conn.recv(left)
            except TimeoutError:
                return out
            self.handle(conn, p, out)

    def assert_quiet(self, conns, within=h.QUIET):
        """None of @conns receives a PUBLISH within @within (watched together; a PUBREL of a
        QoS 2 delivery is answered)."""
        deadline = time.monotonic() + within
        for i, conn in enumerate(conns):
            got = self.settle(conn, max(0.0, deadline - time.monotonic()))
            self.assertEqual(got, [], "unexpected PUBLISH to client %d" % i)

    def metrics(self, port=None):
        resp = h.http_request(port or self.stack.bridge.port, "GET", "/metrics")
        self.assertEqual(resp.status, 200, resp)
        return resp.body.decode()
