"""SIGHUP reloads the listener's certificate (README "Operation", "TLS"): the bridge serves cert A
on HTTPS/WSS; a WSS MQTT connection and an HTTPS event stream are open; the files are replaced
with cert B (another CN and serial, its chain after it) and SIGHUP is sent. The open connections
go on working, and a new TLS connection is shown cert B. A broken new pair (a key of another
certificate, a file that is no certificate, a key of another type) is refused with a log line
naming the file, and B stays. Certificates are made with the openssl command line (test_tls.Certs).
Bridge only."""

import os
import re
import shutil
import signal
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import HOST, TIMEOUT, V5, V311, bridge_only  # noqa: E402
from test_tls import Certs, TlsCase, https, read_log  # noqa: E402

SAN = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"


def peer_cn(port, ca):
    """The CN of the certificate a new TLS connection to @port is shown (verified against @ca)."""
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            return subject["commonName"]


class TlsStream:
    """GET /api/v1/stream over TLS on a raw socket; wait_for() reads until bytes appear."""

    def __init__(self, port, ca, topic):
        ctx = ssl.create_default_context(cafile=ca)
        raw = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.sock = ctx.wrap_socket(raw, server_hostname=HOST)
        self.sock.sendall(("GET /api/v1/stream?topic=%s HTTP/1.1\r\nHost: x\r\n"
                           "Accept: text/event-stream\r\n\r\n" % h.quote_query(topic)).encode())
        self.data = b""
        self.wait_for(b"retry: 2000")
        if not self.data.startswith(b"HTTP/1.1 200"):
            raise AssertionError("stream refused: %r" % self.data[:300])

    def wait_for(self, needle, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while needle not in self.data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%r not on the stream within %.1fs: %r"
                                     % (needle, timeout, self.data[-300:]))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise AssertionError("stream closed: %r" % self.data[-300:])
            self.data += chunk

    def close(self):
        self.sock.close()


@bridge_only("the bridge's listener TLS")
class ReloadTlsTest(TlsCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.certs
        cls.cert_a, cls.key_a = c.make_cert("bridge-a", "bridge-a", SAN)
        cls.cert_b, cls.key_b = c.make_cert("bridge-b", "bridge-b", SAN)
        # an RSA pair for the same names, to try changing the key type
        c.run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa.key", "-out",
              "rsa.csr", "-subj", "/CN=bridge-rsa")
        with open(c.path("rsa.ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\n" + SAN)
        c.run("x509", "-req", "-in", "rsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
              "-CAcreateserial", "-out", "rsa.pem", "-days", "2", "-extfile", "rsa.ext")
        cls.cert_rsa, cls.key_rsa = c.path("rsa.pem"), c.path("rsa.key")

    def setUp(self):
        self.live = h.make_dir("mwb-live-")
        self.addCleanup(h.remove_dir, self.live)
        self.cert = os.path.join(self.live, "cert.pem")
        self.key = os.path.join(self.live, "key.pem")
        self.install(self.cert_a, self.key_a)
        self.b = self.bridge({"tls": {"cert_file": self.cert, "key_file": self.key}})
        h.wait_until(self.up, 10, "HTTPS health", explain=self.b.log)

    def up(self):
        try:
            return https(self.b.port, "GET", "/api/v1/health", self.certs.ca, timeout=2)[0] == 200
        except OSError:
            return False

    def install(self, cert, key, chain=()):
        """Replaces the live files as a renewal does: new files renamed over the old ones."""
        with open(self.cert + ".new", "wb") as out:
            for path in (cert,) + tuple(chain):
                with open(path, "rb") as f:
                    out.write(f.read())
        shutil.copyfile(key, self.key + ".new")
        os.replace(self.key + ".new", self.key)
        os.replace(self.cert + ".new", self.cert)

    def sighup_and_wait(self, pattern):
        """SIGHUP, then the log line matching @pattern that came after it."""
        before = self.hup_at = len(read_log(self.b))
        os.kill(self.b.pid, signal.SIGHUP)
        return h.wait_until(lambda: re.search(pattern, read_log(self.b)[before:]), TIMEOUT,
                            "log %r" % pattern, explain=self.b.log)

    def check_open_connections(self, wss, stream, topic, tag):
        """The connections opened before the reload still carry messages both ways."""
        payload = b"after-" + tag + b"-" + os.urandom(8).hex().encode()
        status, body = https(self.b.port, "POST", "/api/v1/publish/%s?qos=1" % topic,
                             self.certs.ca, body=payload)
        self.assertEqual(status, 200, body)
        self.assertEqual(wss.get().payload, payload)
        stream.wait_for(payload)
        wss.publish(topic, payload + b"-ws", 1)
        self.assertEqual(wss.get().payload, payload + b"-ws")
        stream.wait_for(payload + b"-ws")

    def test_sighup_serves_the_new_certificate_and_keeps_connections(self):
        self.assertEqual(peer_cn(self.b.port, self.certs.ca), "bridge-a")
        topic = self.topic()
        wss = self.ws_client(self.b.port, V5, ca=self.certs.ca)
        self.assertEqual(wss.subscribe(topic, 1), [1])
        stream = TlsStream(self.b.port, self.certs.ca, topic)
        self.addCleanup(stream.close)
        self.check_open_connections(wss, stream, topic, b"start")

        self.install(self.cert_b, self.key_b, chain=(self.certs.ca,))
        m = self.sighup_and_wait(r"info web tls-reloaded file=\S+ serial=([0-9A-F]+) chain=1")
        self.assertEqual(peer_cn(self.b.port, self.certs.ca), "bridge-b")
        self.check_open_connections(wss, stream, topic, b"b")
        # a new WSS client works with B, and the old one is still there
        wss2 = self.ws_client(self.b.port, V311, ca=self.certs.ca)
        self.round_trip_between(wss2, wss, topic)
        self.assertRegex(m.group(1), r"^[0-9A-F]+$")

        # bad pairs: refused, named in the log, B stays, nothing is dropped
        bad = [
            ((self.cert_b, self.key_a), r"error web tls-key-mismatch key=tls.key_file"),
            ((self.certs.path("bridge-a.ext"), self.key_b),
             r"error web tls-cert-invalid key=tls.cert_file"),
            ((self.cert_rsa, self.key_rsa), r"error web tls-reload-failed kept=old .*another type"),
        ]
        for (cert, key), pattern in bad:
            with self.subTest(pattern=pattern):
                self.install(cert, key)
                self.sighup_and_wait(pattern)
                # a check that something never appears: a 'tls-reloaded' after the error
                time.sleep(0.2)
                self.assertNotIn("tls-reloaded", read_log(self.b)[self.hup_at:])
                self.assertEqual(peer_cn(self.b.port, self.certs.ca), "bridge-b")
                self.check_open_connections(wss, stream, topic, b"bad")

        # a missing file too, and then a good pair again is taken
        os.remove(self.cert)
        self.sighup_and_wait(r"error web tls-file-unreadable key=tls.cert_file")
        self.assertEqual(peer_cn(self.b.port, self.certs.ca), "bridge-b")
        self.install(self.cert_a, self.key_a)
        self.sighup_and_wait(r"info web tls-reloaded .*chain=0")
        self.assertEqual(peer_cn(self.b.port, self.certs.ca), "bridge-a")
        self.check_open_connections(wss, stream, topic, b"end")

    def round_trip_between(self, sender, receiver, topic):
        payload = os.urandom(300)
        sender.publish(topic, payload, 1)
        self.assertEqual(receiver.get().payload, payload)
        if sender is not receiver:
            sender.subscribe(topic + "/2", 1)
            receiver.publish(topic + "/2", payload[::-1], 1)
            self.assertEqual(sender.get().payload, payload[::-1])


if __name__ == "__main__":
    h.main()
