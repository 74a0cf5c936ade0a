"""The processes of the benchmark: free ports, /proc readings, the servers under test
(Mosquitto and the bridge) and running the load generator."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

from .common import BRIDGE, LOADGEN, MOSQUITTO, ROOT


# ---- processes ----

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"bench: {what} exited at start-up (status {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: {what} does not listen on port {port}")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def settle(pids, limit=40.0):
    """Waits until the servers are idle (at most one clock tick in 0.5 s), so one scenario's
    leftovers (closing connections, wills, timers) are not billed to the next. Returns the seconds
    waited."""
    t0 = time.time()
    while time.time() - t0 < limit:
        before = [cpu_ticks(p) for p in pids]
        time.sleep(0.5)
        if all(cpu_ticks(p) - b <= 1 for p, b in zip(pids, before)):
            break
    return time.time() - t0


# The bridge's session modes under test: the row label and the config's "mqtt_sessions".
MODES = {"shared": "auto", "dedicated": "dedicated"}


class Servers:
    """The private Mosquitto and the bridge in front of it, in one session mode at a time."""

    def __init__(self, tmp, mode="auto"):
        self.tmp = tmp
        self.procs = []
        self.mode = mode
        self.p_tcp, self.p_ws, self.p_bridge = free_port(), free_port(), free_port()
        conf = os.path.join(tmp, "broker.conf")
        with open(conf, "w") as f:
            f.write(
                "per_listener_settings false\n"
                "allow_anonymous true\n"
                "persistence false\n"
                # Closed-loop runs keep queues small; this only keeps Mosquitto from dropping
                # during the warm-up bursts of 1,000 subscribers.
                "max_queued_messages 1000000\n"
                "log_type error\nlog_type warning\n"
                # As the bridge (lws) and browsers do: without it, QoS 0 streams to a silent
                # subscriber wait on delayed ACKs (Nagle), which measures the kernel, not Mosquitto.
                "set_tcp_nodelay true\n"
                f"listener {self.p_tcp} 127.0.0.1\n"
                f"listener {self.p_ws} 127.0.0.1\nprotocol websockets\n")
        self.conf = conf
        # One config per session mode, the same port: the targets' URLs do not change.
        self.cfgs = {}
        for m in ("auto", "dedicated"):
            cfg = self.cfgs[m] = os.path.join(tmp, f"bridge-{m}.json")
            with open(cfg, "w") as f:
                json.dump({
                    "listen": f"127.0.0.1:{self.p_bridge}",
                    "broker": {"url": f"mqtt://127.0.0.1:{self.p_tcp}"},
                    "static_dir": os.path.join(ROOT, "static"),
                    "log_level": "warn",
                    # "auto": the load generator's sessions (clean, no will, no username or
                    # password, under auth "none") are shared; "dedicated": a Paho client each.
                    "auth": {"mode": "none", "metrics": "open"},
                    "mqtt_credentials": "passthrough",
                    "mqtt_sessions": m,
                    # 10,000 idle WebSocket connections plus the scenario's own ones.
                    "limits": {"max_connections": 30000},
                }, f)
        # A private name for our broker: other work on this machine may stop "mosquitto"
        # processes by name, and must not stop this one mid-run.
        self.broker_exe = os.path.join(tmp, "bench-broker")
        os.symlink(MOSQUITTO, self.broker_exe)
        self.start()

    def start(self):
        self.procs = []
        self.mosq = self._start([self.broker_exe, "-c", self.conf], "broker.log")
        wait_port(self.p_tcp, self.mosq, "mosquitto")
        wait_port(self.p_ws, self.mosq, "mosquitto")
        self._start_bridge()

    def _start_bridge(self):
        self.bridge = self._start([BRIDGE, "--config", self.cfgs[self.mode]], "bridge.log")
        wait_port(self.p_bridge, self.bridge, "the bridge")
        time.sleep(0.5)  # the hub's own broker connections

    def restart(self, mode=None):
        self.stop()
        self.mode = mode or self.mode
        self.start()

    def use(self, mode):
        """The bridge in @mode ("auto" or "dedicated"): restarted alone if it runs in the other."""
        if mode == self.mode and self.bridge.poll() is None:
            return
        self._stop(self.bridge)
        self.procs.remove(self.bridge)
        self.mode = mode
        self._start_bridge()

    def _start(self, argv, logname):
        out = open(os.path.join(self.tmp, logname), "a")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp)
        out.close()
        self.procs.append(p)
        return p

    def alive(self):
        return all(p.poll() is None for p in self.procs)

    @staticmethod
    def _stop(p):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()

    def stop(self):
        for p in reversed(self.procs):
            self._stop(p)

    def log_tail(self, name, n=5):
        try:
            with open(os.path.join(self.tmp, name)) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def sessions(self):
        """The bridge's mwb_sessions and mwb_hub_* samples ({name{labels}: value}), or None if
        /metrics did not answer: which mode the sessions of a scenario got."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.p_bridge}/metrics",
                                        timeout=5) as r:
                text = r.read().decode("utf-8", "replace")
        except OSError:
            return None
        out = {}
        for line in text.splitlines():
            if line.startswith(("mwb_sessions{", "mwb_sessions ", "mwb_hub_")):
                key, _, val = line.rpartition(" ")
                try:
                    out[key] = float(val)
                except ValueError:
                    pass
        return out


# ---- running the load generator ----

def loadgen(args, timeout=300, exe=None, env=None):
    exe = exe or LOADGEN
    r = subprocess.run([exe] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, env=env)
    line = r.stdout.strip().splitlines()[-1:] or ["{}"]
    try:
        res = json.loads(line[0])
    except ValueError:
        res = {"ok": False, "error": f"no JSON from {os.path.basename(exe)}: "
               + r.stderr.strip()[-200:]}
    if r.stderr.strip():
        res.setdefault("stderr", r.stderr.strip()[-300:])
    return res


class Holder:
    """loadgen idle --hold in the background: N idle connections kept open beside a scenario."""

    def __init__(self, args):
        self.p = subprocess.Popen([LOADGEN] + [str(a) for a in args], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        try:
            self.result = json.loads(line)
        except ValueError:
            self.result = {"ok": False, "error": "idle holder gave no result"}

    def close(self):
        self.p.stdin.close()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait()
        self.p.stdout.close()


def summarise(res, kind):
    """Adds the per-message and per-connection figures to a loadgen result."""
    procs = res.get("procs", [])
    names = ["server", "broker"] if len(procs) == 2 else ["server"]
    out = {"ok": bool(res.get("ok")), "raw": res}
    for name, p in zip(names, procs):
        if kind == "idle":
            n = res.get("ready") or 1
            out[name + "_rss_kb_per_conn"] = (p["rss_kb_after"] - p["rss_kb_before"]) / n
            out[name + "_rss_kb"] = p["rss_kb_after"]
        else:
            d = res.get("delivered") or 0
            out[name + "_cpu_us_per_msg"] = p["cpu_s"] * 1e6 / d if d else None
            out[name + "_rss_kb"] = p["rss_kb_after"]
            subs = res.get("subs") or 1
            if "rss_kb_setup" in p:
                out[name + "_rss_kb_per_sub"] = (p["rss_kb_before"] - p["rss_kb_setup"]) / subs
    # What a message or a connection costs the bridge and the broker behind it together (for
    # Mosquitto-WS, Mosquitto alone): issue 12's yardstick.
    for k in ("cpu_us_per_msg", "rss_kb_per_conn"):
        vals = [out.get(n + "_" + k) for n in names]
        if vals and all(isinstance(v, (int, float)) for v in vals):
            out["total_" + k] = sum(vals)
    for k in ("msgs_per_s", "lat_p50_us", "lat_p99_us", "lost", "dups", "reorders",
              "loadgen_cpu_s", "wall_s", "connect_s", "conns"):
        if k in res:
            out[k] = res[k]
    if kind != "idle" and res.get("wall_s"):
        # Near 1.0 the generator itself may have limited the rate.
        out["loadgen_cpu_share"] = round(res.get("loadgen_cpu_s", 0) / res["wall_s"], 2)
    return out
