"""nginx in front of bridges: the example configs of config/nginx/, run as they are but for the
listen address, the certificate lines and the upstream servers."""

import os
import re

from .processes import (Daemon, free_port, log_tail, make_dir, require_tool, spawn, stop_process,
                        wait_port)
from .settings import HOST, REPO_ROOT

NGINX = "/usr/sbin/nginx"
NGINX_EXAMPLES = os.path.join(REPO_ROOT, "config", "nginx")


def nginx_site(example, port, upstreams):
    """The server part of config/nginx/@example for a test: "listen 443 ssl" becomes plain HTTP
    on 127.0.0.1:@port, the ssl_certificate lines go, and the example's upstream servers are
    replaced in order by @upstreams (("127.0.0.1", port) pairs). Each replacement must match,
    so an example that drifts from what is tested fails here."""
    with open(os.path.join(NGINX_EXAMPLES, example)) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^(\s*)listen 443 ssl;$", r"\1listen %s:%d;" % (HOST, port), text)
    if n != 1:
        raise AssertionError("%s: expected one 'listen 443 ssl;', found %d" % (example, n))
    text, n = re.subn(r"(?m)^\s*ssl_certificate(_key)? .*\n", "", text)
    if n != 2:
        raise AssertionError("%s: expected the two ssl_certificate lines, found %d" % (example, n))
    examples = []
    for m in re.finditer(r"(?m)^\s*server (\S+?:\d+)[ ;]", text):
        if m.group(1) not in examples:
            examples.append(m.group(1))
    if len(examples) != len(upstreams):
        raise AssertionError("%s names %d upstream servers %r, the test has %d"
                             % (example, len(examples), examples, len(upstreams)))
    for old, (host, p) in zip(examples, upstreams):
        text = re.sub(r"(?m)^(\s*server )%s([ ;])" % re.escape(old), r"\g<1>%s:%d\2" % (host, p),
                      text)
    return text


class Nginx(Daemon):
    """nginx -c CONF -p DIR in the foreground (daemon off), one worker, logs and temp files in
    its own directory, listening on 127.0.0.1:.port with @site (nginx_site()) in its http block."""

    def __init__(self, example, upstreams):
        require_tool(NGINX)
        self.dir = make_dir("mwb-nginx-")
        os.chmod(self.dir, 0o755)
        self.log_path = os.path.join(self.dir, "error.log")
        self.access_path = os.path.join(self.dir, "access.log")
        self.example = example
        self.upstreams = list(upstreams)
        self.proc = None
        for attempt in range(5):
            self.port = free_port()
            conf = self._write_conf()
            self.proc = spawn([NGINX, "-e", self.log_path, "-c", conf, "-p", self.dir,
                               "-g", "daemon off; pid %s;" % os.path.join(self.dir, "nginx.pid")],
                              self.log_path)
            try:
                wait_port(self.port, self.proc, 10, self.log_path)
                return
            except AssertionError:
                stop_process(self.proc)
                with open(self.log_path, "rb") as f:
                    race = b"in use" in f.read()
                if attempt == 4 or not race:
                    raise

    def _write_conf(self):
        tmp = os.path.join(self.dir, "tmp")
        os.makedirs(tmp, exist_ok=True)
        lines = []
        if os.geteuid() == 0:
            lines.append("user root;")      # else its worker runs as nobody, shut out of dir
        lines += ["worker_processes 1;",
                  "error_log %s info;" % self.log_path,
                  "events { worker_connections 1024; }",
                  "http {",
                  "    access_log %s;" % self.access_path]
        lines += ["    %s_temp_path %s;" % (k, os.path.join(tmp, k))
                  for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")]
        lines += [nginx_site(self.example, self.port, self.upstreams), "}"]
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return conf

    def log(self):
        return log_tail(self.log_path) + "\n" + log_tail(self.access_path)
