"""TLS both ways (doc/design.md §4): the listener serves HTTPS and WSS only when tls.cert_file and
tls.key_file are set; the bridge reaches a TLS broker (mqtts://) with broker.ca_file, an optional
client certificate, and broker.verify (chain and host name). A bad broker certificate keeps the
bridge up (health 503, a log line that says why, retries); a bad listener certificate stops the
start-up with a line that names the file.

Certificates are made here with the openssl command line, in a temporary directory: a CA, a
server certificate for 127.0.0.1 and localhost, one for 127.0.0.1 only (host name checks), a
client certificate, and a second CA that signed nothing of the above.
All bridge only."""

import http.client
import os
import re
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import HOST, TIMEOUT, V5, V311, bridge_only  # noqa: E402

OPENSSL = "/usr/bin/openssl"
UP_WITHIN = 10.0      # a healthy TLS broker link comes up within this
DOWN_WITHIN = 5.0     # a refused broker certificate shows in health and the log within this


class Certs:
    """The test PKI, in a directory removed by cleanup()."""

    def __init__(self):
        h.require_tool(OPENSSL)
        self.dir = h.make_dir("mwb-tls-")
        os.chmod(self.dir, 0o755)          # Mosquitto may read them as its own user
        self.ca, self.ca_key = self.make_ca("ca")
        self.rogue_ca, _ = self.make_ca("rogue-ca")
        self.server, self.server_key = self.make_cert(
            "server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "extendedKeyUsage=serverAuth\n")
        self.server_ip, self.server_ip_key = self.make_cert(
            "server-ip", "127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        self.client, self.client_key = self.make_cert(
            "client", "mwb-test-client", "extendedKeyUsage=clientAuth\n")
        for name in os.listdir(self.dir):
            os.chmod(self.path(name), 0o644)

    def path(self, name):
        return os.path.join(self.dir, name)

    def run(self, *args):
        p = subprocess.run([OPENSSL] + list(args), cwd=self.dir, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=30)
        if p.returncode != 0:
            raise AssertionError("openssl %s failed (%d): %s"
                                 % (" ".join(args), p.returncode, p.stderr.decode(errors="replace")))

    def make_ca(self, name):
        self.run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
                 "-subj", "/CN=mwb test " + name,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return self.path(name + ".pem"), self.path(name + ".key")

    def make_cert(self, name, cn, ext):
        with open(self.path(name + ".ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\n" + ext)
        self.run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        self.run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", name + ".pem", "-days", "2",
                 "-extfile", name + ".ext")
        return self.path(name + ".pem"), self.path(name + ".key")

    def cleanup(self):
        h.remove_dir(self.dir)


def https(port, method, path, ca, body=None, host=HOST, timeout=TIMEOUT):
    """One HTTPS request that trusts only @ca: (status, body bytes)."""
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def curl(*args, timeout=TIMEOUT):
    """curl -sS: (HTTP status, body, exit code, stderr)."""
    h.require_tool(h.CURL)
    cmd = [h.CURL, "-sS", "--max-time", "%g" % timeout, "-w", "\n%{http_code}"] + list(args)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=timeout + 5)
    body, _, code = p.stdout.rpartition(b"\n")
    return int(code or b"0"), body, p.returncode, p.stderr.decode(errors="replace")


def read_log(bridge):
    with open(bridge.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


class TlsCase(unittest.TestCase):
    """One PKI and one Mosquitto per class; bridges are made by the tests' classes."""

    mosquitto_tls = False     # TLS listeners on Mosquitto (.tls_port, .mtls_port, .ip_port)

    @classmethod
    def setUpClass(cls):
        cls.certs = Certs()
        cls.addClassCleanup(cls.certs.cleanup)
        extra = ""
        if cls.mosquitto_tls:
            c = cls.certs
            cls.tls_port, cls.mtls_port, cls.ip_port = h.free_port(), h.free_port(), h.free_port()
            extra = "\n".join([
                # server authentication only
                "listener %d %s" % (cls.tls_port, HOST),
                "cafile %s" % c.ca, "certfile %s" % c.server, "keyfile %s" % c.server_key,
                # mutual TLS: a client certificate signed by the CA is required
                "listener %d %s" % (cls.mtls_port, HOST),
                "cafile %s" % c.ca, "certfile %s" % c.server, "keyfile %s" % c.server_key,
                "require_certificate true",
                # a certificate for 127.0.0.1 only: "localhost" does not match it
                "listener %d %s" % (cls.ip_port, HOST),
                "cafile %s" % c.ca, "certfile %s" % c.server_ip,
                "keyfile %s" % c.server_ip_key])
        cls.broker = h.Mosquitto(extra_conf=extra)
        cls.addClassCleanup(cls.broker.cleanup)
        for port in ((cls.tls_port, cls.mtls_port, cls.ip_port) if cls.mosquitto_tls else ()):
            h.wait_port(port, cls.broker.proc, 10, cls.broker.log_path)

    def bridge(self, config=None, broker_url=None):
        b = h.Bridge(self.broker.port, config=config, broker_url=broker_url)
        self.addCleanup(b.cleanup)
        return b

    def observer(self, topic):
        """A v5 client on Mosquitto's plain TCP listener subscribed to @topic: it sees what really
        reached the broker."""
        c = h.TcpObserver(self.broker.port, V5, "obs-%d" % time.monotonic_ns())
        self.addCleanup(c.close)
        c.connect()
        self.assertEqual(c.subscribe(topic, 1), [1])
        return c

    def ws_client(self, port, version=V311, ca=None, expect_rc=0):
        c = h.Paho(port, version, "tls-%s-%d" % (self._testMethodName[-20:], time.monotonic_ns()))
        self.addCleanup(c.close)
        if ca:
            c.c.tls_set(ca_certs=ca)
        c.connect(expect_rc=expect_rc)
        return c

    @staticmethod
    def health(port):
        return h.http_request(port, "GET", "/api/v1/health", timeout=2).status

    def wait_health(self, bridge, status, timeout):
        h.wait_until(lambda: self.health(bridge.port) == status, timeout, "health %d" % status,
                     explain=lambda: self.logs(bridge))

    def logs(self, bridge):
        return "%s\n%s" % (self.broker.log(), bridge.log())

    def topic(self, leaf="t"):
        return "mwbtest/tls/%s/%d/%s" % (self._testMethodName[-24:], time.monotonic_ns(), leaf)


@bridge_only("the bridge's listener TLS")
class ListenerTlsTest(TlsCase):
    """tls.cert_file / tls.key_file: HTTPS and WSS on the one port, plain HTTP refused there."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # one bridge for the class: it is the listener that is under test here
        cls.b = h.Bridge(cls.broker.port, config={"tls": {"cert_file": cls.certs.server,
                                                          "key_file": cls.certs.server_key}})
        cls.addClassCleanup(cls.b.cleanup)

        def up():
            try:
                return https(cls.b.port, "GET", "/api/v1/health", cls.certs.ca, timeout=2)[0] == 200
            except (OSError, http.client.HTTPException):
                return False
        h.wait_until(up, UP_WITHIN, "HTTPS health 200", explain=cls.b.log)

    def test_https_health_with_curl(self):
        ca = self.certs.ca
        for host in ("127.0.0.1", "localhost"):
            url = "https://%s:%d/api/v1/health" % (host, self.b.port)
            status, body, rc, err = curl("--cacert", ca, url)
            self.assertEqual((rc, status), (0, 200), "%s: %s %s\n%s" % (url, err, body,
                                                                          self.b.log()))
            self.assertIn(b'"connected":true', body.replace(b" ", b""))
        # and only because the CA is trusted: without it curl refuses the certificate
        status, _, rc, err = curl("https://127.0.0.1:%d/api/v1/health" % self.b.port)
        self.assertNotEqual(rc, 0, "curl trusted an unknown CA: %s" % err)

    def test_https_static_files(self):
        status, body = https(self.b.port, "GET", "/", self.certs.ca)
        self.assertEqual(status, 200, body[:200])

    def test_plain_http_refused(self):
        status, body, rc, err = curl("http://127.0.0.1:%d/api/v1/health" % self.b.port)
        self.assertNotEqual(rc, 0, "plain HTTP answered %d on the TLS port: %r" % (status, body))
        self.assertNotEqual(status, 200)
        # the TLS port keeps working after a plain client
        self.assertEqual(https(self.b.port, "GET", "/api/v1/health", self.certs.ca)[0], 200)

    def test_startup_line_names_https_and_wss(self):
        log = read_log(self.b)
        self.assertRegex(log, r"listening url=https://127\.0\.0\.1:%d/ mqtt=wss://127\.0\.0\.1:%d/mqtt"
                         % (self.b.port, self.b.port))
        self.assertNotIn("url=http://", log)

    def test_wss_receives_rest_publish_byte_for_byte(self):
        topic = self.topic()
        payload = bytes(range(256)) + os.urandom(1000) + b"\x00end"
        for version in (V311, V5):
            with self.subTest(version=version):
                c = self.ws_client(self.b.port, version, ca=self.certs.ca)
                self.assertEqual(c.subscribe(topic, 1), [1])
                status, body = https(self.b.port, "POST", "/api/v1/publish/%s?qos=1" % topic,
                                     self.certs.ca, body=payload)
                self.assertEqual(status, 200, body)
                msg = c.get()
                self.assertEqual((msg.topic, msg.payload), (topic, payload))
                # and the other way: published over WSS, received over WSS
                c.publish(topic, payload[::-1], 1)
                msg = c.get()
                self.assertEqual(msg.payload, payload[::-1])
                c.disconnect()

    def test_wss_needs_tls(self):
        """A plain WebSocket client gets no MQTT session on the TLS port."""
        c = h.Paho(self.b.port, V311, "tls-plain-ws")
        self.addCleanup(c.close)
        # refused, reset, or no CONNACK: whichever way, not connected
        with self.assertRaises(Exception):
            c.connect(timeout=3)


@bridge_only("the bridge's broker TLS")
class BrokerTlsTest(TlsCase):
    """broker.url mqtts:// with broker.ca_file (and a client certificate)."""
    mosquitto_tls = True

    def check_bridge_works(self, b):
        self.wait_health(b, 200, UP_WITHIN)
        topic = self.topic()
        obs = self.observer(topic)
        c = self.ws_client(b.port, V5)
        self.assertEqual(c.subscribe(topic, 1), [1])
        # MQTT over WebSocket through the bridge: the browser's own upstream uses TLS too
        payload = os.urandom(512)
        c.publish(topic, payload, 1)
        self.assertEqual(c.get().payload, payload)
        self.assertEqual(obs.get().payload, payload)
        # REST publish, over the hub's TLS link
        resp = h.http_request(b.port, "POST", "/api/v1/publish/%s?qos=1" % topic, b"via rest")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(c.get().payload, b"via rest")
        self.assertEqual(obs.get().payload, b"via rest")
        c.disconnect()

    def test_mqtts_server_auth(self):
        b = self.bridge({"broker": {"ca_file": self.certs.ca}},
                        "mqtts://127.0.0.1:%d" % self.tls_port)
        self.check_bridge_works(b)

    def test_ssl_scheme_and_host_name(self):
        # ssl:// is Paho's name for the same thing; localhost is in the certificate's names
        b = self.bridge({"broker": {"ca_file": self.certs.ca}},
                        "ssl://localhost:%d" % self.tls_port)
        self.check_bridge_works(b)

    def test_mqtts_client_certificate(self):
        b = self.bridge({"broker": {"ca_file": self.certs.ca, "cert_file": self.certs.client,
                                    "key_file": self.certs.client_key}},
                        "mqtts://127.0.0.1:%d" % self.mtls_port)
        self.check_bridge_works(b)

    def test_verify_false_accepts_wrong_host_name(self):
        b = self.bridge({"broker": {"ca_file": self.certs.rogue_ca, "verify": False}},
                        "mqtts://localhost:%d" % self.ip_port)
        self.check_bridge_works(b)


@bridge_only("the bridge's broker TLS failures")
class BrokerTlsFailureTest(TlsCase):
    """A broker certificate the bridge must refuse: it keeps serving, says why, and retries."""
    mosquitto_tls = True

    def assert_refused(self, b, pattern):
        """Health 503 (and stays so), a hub broker-down line matching @pattern, retried with
        backoff, the process alive and serving static files, browsers told "unavailable"."""
        def lines():
            return re.findall(r"^.* warn hub broker-down .*$", read_log(b), re.M)

        h.wait_until(lines, DOWN_WITHIN, "a hub broker-down line", explain=lambda: self.logs(b))
        self.assertEqual(self.health(b.port), 503, self.logs(b))
        self.assertRegex(lines()[0], pattern, self.logs(b))
        # retried: the backoff starts at 1 s
        h.wait_until(lambda: len(lines()) >= 2, DOWN_WITHIN, "a second attempt",
                     explain=lambda: self.logs(b))
        self.assertIsNone(b.proc.poll(), "the bridge exited\n%s" % self.logs(b))
        resp = h.http_request(b.port, "GET", "/")
        self.assertEqual(resp.status, 200, resp)
        resp = h.http_request(b.port, "GET", "/api/v1/health")
        self.assertEqual(resp.status, 503, resp)
        self.assertFalse(resp.json()["broker"]["connected"], resp)
        # a browser's own upstream is refused the same way: CONNACK "server unavailable"
        self.ws_client(b.port, V311, expect_rc=3)
        self.ws_client(b.port, V5, expect_rc=0x88)
        self.assertIsNone(b.proc.poll(), "the bridge exited\n%s" % self.logs(b))

    def test_untrusted_ca(self):
        b = self.bridge({"broker": {"ca_file": self.certs.rogue_ca}},
                        "mqtts://127.0.0.1:%d" % self.tls_port)
        self.assert_refused(b, r'reason=unreachable .*error="[^"]*certificate verify failed')

    def test_wrong_host_name(self):
        b = self.bridge({"broker": {"ca_file": self.certs.ca}},
                        "mqtts://localhost:%d" % self.ip_port)
        # Paho checks the host name after the handshake and gives no TLS reason: the line
        # names the possible causes
        self.assert_refused(b, r'reason=unreachable .*error="[^"]*'
                               r'host name not in its certificate')

    def test_client_certificate_required(self):
        b = self.bridge({"broker": {"ca_file": self.certs.ca}},
                        "mqtts://127.0.0.1:%d" % self.mtls_port)
        self.assert_refused(b, r'reason=unreachable .*error="[^"]*client certificate needed')

    def test_missing_ca_file(self):
        missing = os.path.join(self.certs.dir, "no-such-ca.pem")
        b = self.bridge({"broker": {"ca_file": missing}}, "mqtts://127.0.0.1:%d" % self.tls_port)
        self.assert_refused(b, r'error="broker\.ca_file %s: No such file' % re.escape(missing))


@bridge_only("the bridge's start-up checks")
class BadListenerCertTest(TlsCase):
    """A listener certificate or key that cannot be used stops the start-up: exit status 1 and
    one error line naming the file, never a crash and never a listener without a certificate."""

    def start_and_wait_exit(self, cert, key):
        d = h.make_dir("mwb-badtls-")
        self.addCleanup(h.remove_dir, d)
        conf = os.path.join(d, "config.json")
        with open(conf, "w") as f:
            f.write('{"tls": {"cert_file": "%s", "key_file": "%s"}}' % (cert, key))
        log_path = os.path.join(d, "bridge.log")
        binary = os.environ.get("MWB_BINARY")
        if not binary:
            raise AssertionError("MWB_BINARY is not set")
        port = h.free_port()
        proc = h.spawn([os.path.abspath(binary), "--listen", "%s:%d" % (HOST, port), "--broker",
                        "mqtt://%s:%d" % (HOST, self.broker.port), "--config", conf],
                       log_path, cwd=h.REPO_ROOT)
        self.addCleanup(h.stop_process, proc)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            raise AssertionError("the bridge still runs with a bad certificate\n%s"
                                 % h.log_tail(log_path))
        h.stop_process(proc)
        with open(log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        self.assertEqual(code, 1, "exit status (negative: a signal, i.e. a crash)\n" + log)
        return log

    def error_line(self, log, path):
        lines = [l for l in log.splitlines() if " error web tls-" in l]
        self.assertTrue(lines, "no tls error line:\n" + log)
        self.assertIn('file="%s"' % path, lines[0], log)
        return lines[0]

    def test_missing_cert_file(self):
        missing = os.path.join(self.certs.dir, "missing-cert.pem")
        log = self.start_and_wait_exit(missing, self.certs.server_key)
        line = self.error_line(log, missing)
        self.assertIn("key=tls.cert_file", line)
        self.assertIn("No such file", line)

    def test_missing_key_file(self):
        missing = os.path.join(self.certs.dir, "missing-key.pem")
        log = self.start_and_wait_exit(self.certs.server, missing)
        self.assertIn("key=tls.key_file", self.error_line(log, missing))

    def test_not_a_certificate(self):
        log = self.start_and_wait_exit(self.certs.server_key, self.certs.server_key)
        line = self.error_line(log, self.certs.server_key)
        self.assertIn("tls-cert-invalid key=tls.cert_file", line)

    def test_key_does_not_match(self):
        log = self.start_and_wait_exit(self.certs.server, self.certs.client_key)
        line = self.error_line(log, self.certs.client_key)
        self.assertIn("tls-key-mismatch", line)


if __name__ == "__main__":
    h.main()
