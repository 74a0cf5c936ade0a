"""Installing the bridge (README "Install"): `meson install` and the Debian package.

MesonInstallTest configures the repository with --prefix in a temporary directory, installs it
there and runs the installed binary from an empty working directory with only --listen and
--broker (a real Mosquitto): it must find the installed config and browser files by itself, tell
systemd READY=1 once it listens and STOPPING=1 on SIGTERM (a NOTIFY_SOCKET of the test's own), and
a second install must keep an edited config. The man page renders without warnings and names every
flag of --help and every key of the README's Configuration table; the unit passes
`systemd-analyze verify` and scores what the README says in `systemd-analyze security`.

DebTest copies the repository to a temporary directory (dpkg-buildpackage writes into the parent
directory: nothing may land outside the repository), builds the .deb there offline with
DEB_BUILD_OPTIONS=nocheck, and checks its files, its control data (Depends on the distribution's
libraries, the conffile, the unit enabled and the user created on install), and that the files
unpacked with `dpkg -x` into a scratch root run.
"""
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest

import harness as h

SRC = h.REPO_ROOT
MESON = "/usr/bin/meson"
GROFF = "/usr/bin/groff"
MAN = "/usr/bin/man"
SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"
DPKG_BUILDPACKAGE = "/usr/bin/dpkg-buildpackage"
DPKG_DEB = "/usr/bin/dpkg-deb"
DPKG = "/usr/bin/dpkg"
DH = "/usr/bin/dh"

UNIT = "mqtt-web-bridge.service"
# The README's Install section reports this score; a unit that scores worse fails here.
SECURITY_EXPOSURE_MAX = 1.2
HARDENING = ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
             "PrivateTmp=yes", "PrivateDevices=yes", "CapabilityBoundingSet=\n",
             "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes",
             "LockPersonality=yes", "RestrictNamespaces=yes", "ProtectKernelTunables=yes",
             "ProtectKernelModules=yes", "ProtectControlGroups=yes", "LimitNOFILE=65536",
             "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX")


def run(cmd, timeout, cwd=None, env=None, check=True):
    """Runs @cmd; fails with its output when it exits non-zero (with @check)."""
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%s: not done within %ds\n%s" % (" ".join(cmd), timeout,
                                                             (e.stdout or b"")[-3000:].decode()))
    if check and p.returncode != 0:
        raise AssertionError("%s: exit %d\n%s\n%s" % (" ".join(cmd), p.returncode,
                                                    p.stdout.decode(errors="replace")[-4000:],
                                                    p.stderr.decode(errors="replace")[-4000:]))
    return p


def clean_env(**extra):
    """The environment without what would redirect an install (DESTDIR) or a package build."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DESTDIR", "MESON_BUILD_ROOT", "MESON_SOURCE_ROOT", "MESONINTROSPECT")
           and not k.startswith("DEB_")}
    env.update(extra)
    return env


def files_under(root):
    """Relative path -> bytes of every file below @root."""
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = f.read()
    return out


def help_flags(binary):
    text = run([binary, "--help"], 10).stdout.decode()
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b", text))
    assert {"--config", "--listen", "--broker", "--static", "--check", "--new-token", "--help",
            "--version", "-v"} <= flags, flags
    return flags


def readme_config_keys():
    """The keys of the README's Configuration table (`broker.username`, `broker.password` rows
    name two)."""
    with open(os.path.join(SRC, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    table = section.split("\n### ", 1)[0]
    keys = []
    for line in table.splitlines():
        m = re.match(r"^\| (`[^|]*`) \|", line)
        if m and not line.startswith("| key"):
            keys += re.findall(r"`([a-z_.]+)`", m.group(1))
    assert "listen" in keys and "sse.replay" in keys, keys
    return keys


def render_man(path):
    """The page as text, failing on any warning of groff or man."""
    p = run([GROFF, "-man", "-ww", "-z", path], 20)
    assert p.stderr == b"", "groff warns about %s:\n%s" % (path, p.stderr.decode())
    p = run([MAN, "--warnings", "-l", path], 20,
            env=clean_env(MANWIDTH="200", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="0"))
    assert p.stderr == b"", "man warns about %s:\n%s" % (path, p.stderr.decode())
    # Bold and underline come as overstrikes when stdout is not a terminal.
    return re.sub(r".\x08", "", p.stdout.decode())


class NotifySocket:
    """A NOTIFY_SOCKET as systemd makes one: datagrams of KEY=VALUE lines."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def wait_for(self, key, timeout):
        """The message holding @key (e.g. READY=1), as a dict; fails after @timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s on NOTIFY_SOCKET within %.1fs" % (key, timeout))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
            if key in data.splitlines():
                return fields

    def close(self):
        self.sock.close()


def http_get(port, path):
    return h.http_request(port, "GET", path)


class MesonInstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in (MESON, GROFF, MAN, SYSTEMD_ANALYZE):
            h.require_tool(tool)
        cls.dir = h.make_dir("mwb-install-")
        cls.prefix = os.path.join(cls.dir, "prefix")
        cls.build = os.path.join(cls.dir, "build")
        run([MESON, "setup", "--prefix", cls.prefix, "-Dtests=false", "-Dbuildtype=debugoptimized",
             cls.build, SRC], 120, env=clean_env())
        cls.install_log = run([MESON, "install", "-C", cls.build], 240,
                              env=clean_env()).stdout.decode()
        cls.binary = os.path.join(cls.prefix, "bin", "mqtt-web-bridge")
        cls.config = os.path.join(cls.prefix, "etc", "mqtt-web-bridge", "mqtt-web-bridge.json")
        cls.static = os.path.join(cls.prefix, "share", "mqtt-web-bridge", "static")
        cls.man = os.path.join(cls.prefix, "share", "man", "man8", "mqtt-web-bridge.8")
        cls.unit = os.path.join(cls.prefix, "lib", "systemd", "system", UNIT)
        cls.sysusers = os.path.join(cls.prefix, "lib", "sysusers.d", "mqtt-web-bridge.conf")
        cls.cwd = h.make_dir("mwb-install-cwd-")   # empty: no config/ and no static/ here

    @classmethod
    def tearDownClass(cls):
        h.remove_dir(cls.cwd)
        h.remove_dir(cls.dir)

    def test_files_in_place(self):
        self.assertTrue(os.access(self.binary, os.X_OK), self.install_log)
        self.assertEqual(files_under(self.static), files_under(os.path.join(SRC, "static")))
        with open(self.config, "rb") as got, \
                open(os.path.join(SRC, "config", "mqtt-web-bridge.json"), "rb") as want:
            self.assertEqual(got.read(), want.read())
        for path in (self.man, self.unit, self.sysusers):
            self.assertTrue(os.path.isfile(path), path)
        with open(self.sysusers) as f:
            self.assertRegex(f.read(), r"(?m)^u mqtt-web-bridge ")

    def test_check_finds_installed_files(self):
        p = run([self.binary, "--check"], 10, cwd=self.cwd)
        settings = dict(line.split("=", 1) for line in p.stdout.decode().splitlines())
        self.assertEqual(settings["config"], self.config)
        self.assertEqual(settings["static_dir"], self.static)

    def test_repository_layout_wins(self):
        """Run from the repository (scripts/run.sh), the relative config/ and static/ are used."""
        p = run([self.binary, "--check"], 10, cwd=SRC)
        settings = dict(line.split("=", 1) for line in p.stdout.decode().splitlines())
        self.assertEqual(settings["config"], "config/mqtt-web-bridge.json")
        self.assertEqual(settings["static_dir"], "static")

    def test_runs_from_prefix_and_notifies(self):
        broker = h.Mosquitto()
        self.addCleanup(broker.cleanup)
        notify = NotifySocket(self.dir)
        self.addCleanup(notify.close)
        self.addCleanup(lambda: os.path.exists(notify.path) and os.unlink(notify.path))
        port = h.free_port()
        log = os.path.join(self.dir, "bridge.log")
        os.environ["NOTIFY_SOCKET"] = notify.path   # as systemd passes it
        try:
            proc = h.spawn([self.binary, "--listen", "%s:%d" % (h.HOST, port),
                            "--broker", "mqtt://%s:%d" % (h.HOST, broker.port)], log, cwd=self.cwd)
        finally:
            del os.environ["NOTIFY_SOCKET"]
        self.addCleanup(h.stop_process, proc)
        try:
            ready = notify.wait_for("READY=1", 10)
            # READY=1 comes once the listener is up: a connection succeeds at once.
            with socket.create_connection((h.HOST, port), timeout=1):
                pass
        except (AssertionError, OSError) as e:
            raise AssertionError("%s\n%s" % (e, h.log_tail(log)))
        self.assertEqual(ready.get("STATUS"), "listening on %s:%d" % (h.HOST, port), ready)

        resp = http_get(port, "/")
        self.assertEqual(resp.status, 200, h.log_tail(log))
        with open(os.path.join(self.static, "index.html"), "rb") as f:
            self.assertEqual(resp.body, f.read())
        deadline = time.monotonic() + 10
        while http_get(port, "/api/v1/health").status != 200:
            self.assertLess(time.monotonic(), deadline, "health not 200\n" + h.log_tail(log))
            time.sleep(0.1)
        with open(log, encoding="utf-8", errors="replace") as f:
            self.assertIn('config path="%s"' % self.config, f.read())

        os.kill(proc.pid, signal.SIGTERM)
        notify.wait_for("STOPPING=1", 5)
        self.assertEqual(h.stop_process(proc, 10), 0, h.log_tail(log))

    def test_man_page(self):
        text = render_man(self.man)
        for section in ("NAME", "SYNOPSIS", "OPTIONS", "CONFIGURATION", "SIGNALS", "EXIT STATUS",
                        "FILES"):
            self.assertRegex(text, r"(?m)^%s$" % section)
        for flag in sorted(help_flags(self.binary)):
            self.assertRegex(text, r"(?<![\w-])%s\b" % re.escape(flag), "flag %s" % flag)
        for key in readme_config_keys():
            self.assertRegex(text, r"(?m)^ +(\S+, )?%s\b" % re.escape(key),
                             "config key %s has no entry" % key)
        for word in ("SIGTERM", "SIGHUP", "SIGINT", "/etc/mqtt-web-bridge/mqtt-web-bridge.json"):
            self.assertIn(word, text)

    def test_reinstall_keeps_edited_config(self):
        with open(self.config, "rb") as f:
            original = f.read()

        def restore():
            with open(self.config, "wb") as f:
                f.write(original)
        self.addCleanup(restore)
        edited = json.loads(original)
        edited["log_level"] = "debug"
        edited_text = json.dumps(edited, indent=2).encode()
        with open(self.config, "wb") as f:
            f.write(edited_text)
        index = os.path.join(self.static, "index.html")
        os.unlink(index)
        log = run([MESON, "install", "-C", self.build], 120, env=clean_env()).stdout.decode()
        with open(self.config, "rb") as f:
            self.assertEqual(f.read(), edited_text, log)
        self.assertIn("install-config.sh", log)   # the step ran, and kept the file
        self.assertTrue(os.path.isfile(index), "the browser files are installed again")

    def test_unit(self):
        with open(self.unit) as f:
            unit = f.read()
        self.assertIn("\nType=notify\n", unit)
        self.assertIn("\nExecStart=%s --config %s\n" % (self.binary, self.config), unit)
        self.assertIn("\nExecReload=/bin/kill -HUP $MAINPID\n", unit)
        for line in HARDENING:
            self.assertIn("\n" + line, unit)
        # MANPATH: Documentation=man:mqtt-web-bridge(8) must resolve to the installed page.
        p = run([SYSTEMD_ANALYZE, "verify", self.unit], 30, check=False,
                env=clean_env(MANPATH=os.path.join(self.prefix, "share", "man")))
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, b""))
        p = run([SYSTEMD_ANALYZE, "security", "--offline=yes", "--no-pager", self.unit], 30,
                check=False)
        m = re.search(r"Overall exposure level for %s: ([0-9.]+)" % re.escape(UNIT),
                      p.stdout.decode())
        self.assertIsNotNone(m, p.stdout.decode() + p.stderr.decode())
        self.assertLessEqual(float(m.group(1)), SECURITY_EXPOSURE_MAX, p.stdout.decode())


def copy_ignore(directory, names):
    """What a package build must not see: build trees, VCS data, node modules, test output."""
    top = os.path.abspath(directory) == SRC
    skip = []
    for n in names:
        if n in ("node_modules", "__pycache__", ".git"):
            skip.append(n)
        elif top and (n.startswith("build") or n.startswith("obj-") or n in (".run",)):
            skip.append(n)
        elif os.path.basename(directory) == "tests" and n == "artifacts":
            skip.append(n)
        elif os.path.basename(directory) == "debian" and (
                n in ("mqtt-web-bridge", ".debhelper", "files", "debhelper-build-stamp")
                or n.endswith(".substvars") or ".debhelper" in n):
            skip.append(n)
    return skip


class DebTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in (DPKG_BUILDPACKAGE, DPKG_DEB, DPKG, DH, SYSTEMD_ANALYZE, MAN):
            h.require_tool(tool)
        parent = os.path.dirname(SRC)
        cls.parent_before = set(os.listdir(parent))
        cls.dir = h.make_dir("mwb-deb-")
        cls.src = os.path.join(cls.dir, "mqtt-web-bridge")
        shutil.copytree(SRC, cls.src, ignore=copy_ignore, symlinks=True)
        env = clean_env(DEB_BUILD_OPTIONS="nocheck parallel=2", DEB_BUILD_PROFILES="nocheck")
        cls.build_log = run([DPKG_BUILDPACKAGE, "-us", "-uc", "-b"], 200, cwd=cls.src,
                            env=env).stdout.decode(errors="replace")
        debs = [d for d in glob.glob(os.path.join(cls.dir, "mqtt-web-bridge_*.deb"))]
        assert len(debs) == 1, (debs, cls.build_log[-3000:])
        cls.deb = debs[0]
        cls.root = os.path.join(cls.dir, "root")
        run([DPKG, "-x", cls.deb, cls.root], 60)

    @classmethod
    def tearDownClass(cls):
        h.remove_dir(cls.dir)

    def test_nothing_written_outside(self):
        parent = os.path.dirname(SRC)
        new = set(os.listdir(parent)) - self.parent_before
        self.assertEqual([n for n in new if n.startswith("mqtt-web-bridge_")], [])

    def test_contents(self):
        listing = run([DPKG_DEB, "-c", self.deb], 30).stdout.decode()
        paths = {line.split()[5] for line in listing.splitlines()}
        want = {"./usr/bin/mqtt-web-bridge",
                "./lib/systemd/system/" + UNIT,
                "./etc/mqtt-web-bridge/mqtt-web-bridge.json",
                "./usr/share/man/man8/mqtt-web-bridge.8.gz",
                "./usr/lib/sysusers.d/mqtt-web-bridge.conf",
                "./usr/share/doc/mqtt-web-bridge/copyright"}
        want |= {"./usr/share/mqtt-web-bridge/static/" + p
                 for p in files_under(os.path.join(SRC, "static"))}
        self.assertEqual(want - paths, set(), listing)

    def test_control(self):
        info = run([DPKG_DEB, "-I", self.deb], 30).stdout.decode()
        depends = re.search(r"(?m)^ Depends: (.*)$", info)
        self.assertIsNotNone(depends, info)
        # libwebsockets-evlib-ev: lws loads it at run time (the libev event loop), no shlib sees it
        for lib in ("libwebsockets17", "libwebsockets-evlib-ev", "libev4", "libpaho-mqtt1.3",
                    "libjansson4", "libsystemd0"):
            self.assertRegex(depends.group(1), r"(^|, )%s\b" % re.escape(lib), info)
        conffiles = run([DPKG_DEB, "-I", self.deb, "conffiles"], 30).stdout.decode()
        self.assertEqual(conffiles.split(), ["/etc/mqtt-web-bridge/mqtt-web-bridge.json"])
        postinst = run([DPKG_DEB, "-I", self.deb, "postinst"], 30).stdout.decode()
        self.assertIn("systemd-sysusers", postinst)
        self.assertIn("deb-systemd-helper enable '%s'" % UNIT, postinst)
        # the user is made before the unit starts
        self.assertLess(postinst.index("systemd-sysusers"), postinst.index("deb-systemd-invoke"))

    def test_unpacked_binary_runs(self):
        binary = os.path.join(self.root, "usr", "bin", "mqtt-web-bridge")
        version = run([binary, "--version"], 10).stdout.decode().strip()
        want = run([os.environ["MWB_BINARY"], "--version"], 10).stdout.decode().strip()
        self.assertEqual(version, want)
        self.assertRegex(version, r"^mqtt-web-bridge \d+\.\d+\.\d+$")
        # Its compiled-in paths are /etc and /usr/share; here the scratch root's are given.
        broker = h.Mosquitto()
        self.addCleanup(broker.cleanup)
        port = h.free_port()
        log = os.path.join(self.dir, "bridge.log")
        proc = h.spawn([binary, "--config",
                        os.path.join(self.root, "etc/mqtt-web-bridge/mqtt-web-bridge.json"),
                        "--static", os.path.join(self.root, "usr/share/mqtt-web-bridge/static"),
                        "--listen", "%s:%d" % (h.HOST, port),
                        "--broker", "mqtt://%s:%d" % (h.HOST, broker.port)], log)
        self.addCleanup(h.stop_process, proc)
        h.wait_port(port, proc, 10, log)
        resp = http_get(port, "/embed.js")
        self.assertEqual(resp.status, 200, h.log_tail(log))
        with open(os.path.join(SRC, "static", "embed.js"), "rb") as f:
            self.assertEqual(resp.body, f.read())
        self.assertEqual(h.stop_process(proc, 10), 0, h.log_tail(log))

    def test_unit_verifies(self):
        """The packaged unit, with its paths pointed into the scratch root (the binary is not
        installed on this machine), passes `systemd-analyze verify`."""
        with open(os.path.join(self.root, "lib/systemd/system", UNIT)) as f:
            unit = f.read()
        self.assertIn("\nExecStart=/usr/bin/mqtt-web-bridge --config "
                      "/etc/mqtt-web-bridge/mqtt-web-bridge.json\n", unit)
        self.assertIn("\nType=notify\n", unit)
        unit = unit.replace("ExecStart=/usr/bin/", "ExecStart=%s/usr/bin/" % self.root)
        scratch = os.path.join(self.dir, "unit")
        os.makedirs(scratch, exist_ok=True)
        path = os.path.join(scratch, UNIT)
        with open(path, "w") as f:
            f.write(unit)
        p = run([SYSTEMD_ANALYZE, "verify", path], 30, check=False,
                env=clean_env(MANPATH=os.path.join(self.root, "usr/share/man")))
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, b""))


if __name__ == "__main__":
    h.main()
