#!/usr/bin/python3
"""bench/bench.py — the benchmark of issues 7 and 12: the bridge beside Mosquitto's own WebSocket
listener, with browser sessions shared and dedicated.

One command (from the repository root):  bench/bench.py
  builds build-bench/ (release, with bench/loadgen), starts a private Mosquitto (a TCP and a
  WebSocket listener) and the bridge in front of it on free loopback ports, runs every scenario
  against (a) Mosquitto's WebSocket listener, (b) the bridge with "mqtt_sessions": "auto" (rows
  "shared": the load generator's clean, will-less, credential-less sessions are served from the
  hub's shared Paho client) and (c) the bridge with "mqtt_sessions": "dedicated" (one Paho client
  per browser), interleaved, twice, prints a table and writes bench/results/latest.json. The SSE
  and HTTP publish scenarios do not depend on the mode and run once, with the default ("auto").
  About 12 minutes.

  bench/bench.py --quick          small scales and short runs, for development
  bench/bench.py --modes shared   only these bridge modes (shared, dedicated) beside Mosquitto-WS
  bench/bench.py --soak [--minutes 10] [--mode auto|dedicated]
                                  clients connecting and leaving; RSS at the end vs after warm-up
  bench/bench.py --syscalls [--mode auto|dedicated]
                                  system calls per message (strace -c) of the latency scenario,
                                  for Mosquitto-WS, the bridge and the broker behind it
  bench/bench.py --paho           only the probes of Paho alone (bench/pahoprobe.c: MQTTAsync
                                  clients in one process against Mosquitto's TCP listener, none
                                  of the bridge), which the full run also does after the rest;
                                  writes bench/results/paho.json
  bench/bench.py --paho-hp DIR [--paho-ref DIR]
                                  the Paho probes also against another build of the same Paho
                                  (DIR holds its libpaho-mqtt3as.so.1, loaded through
                                  LD_LIBRARY_PATH), interleaved with Debian's, same run: DIR a
                                  PAHO_HIGH_PERFORMANCE=ON build made outside the repository, the
                                  optional reference one of the same source and flags with
                                  PAHO_HIGH_PERFORMANCE=OFF, as Debian builds it (the options each
                                  was made with are read from its CMakeCache.txt)

Python 3 standard library only. Every process it starts is stopped by its PID.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build-bench")
LOADGEN = os.path.join(BUILD, "bench", "loadgen")
PAHOPROBE = os.path.join(BUILD, "bench", "pahoprobe")
BRIDGE = os.path.join(BUILD, "mqtt-web-bridge")
MOSQUITTO = "/usr/sbin/mosquitto"
RESULTS = os.path.join(ROOT, "bench", "results")
NOFILE = 65536
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


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


# ---- scenarios ----

# Who runs each scenario: MQTT over WebSocket against Mosquitto-WS and the bridge in both session
# modes; SSE and HTTP publish (the hub's, whatever the mode) against Mosquitto and the bridge once.
MQTT_TARGETS = ("mosq", "shared", "dedicated")
HUB_TARGETS = ("mosq", "bridge")


def scenarios(q):
    """Each: name, what a message is, kind, per target how to run it, which targets."""
    d = q["duration"]
    fan = ["pubsub", "--subs", q["fanout_subs"], "--window", 64, "--duration", d]
    return [
        ("fanout_q0", f"fan-out 1 -> {q['fanout_subs']} WS, QoS 0", "pubsub",
         lambda t: fan + ["--pub", t.ws, "--sub", t.ws, "--qos", 0], MQTT_TARGETS),
        ("fanout_q1", f"fan-out 1 -> {q['fanout_subs']} WS, QoS 1", "pubsub",
         lambda t: fan + ["--pub", t.ws, "--sub", t.ws, "--qos", 1], MQTT_TARGETS),
        ("fanin_q0", "fan-in 10 -> 1 WS, QoS 0", "pubsub",
         lambda t: ["pubsub", "--pubs", 10, "--subs", 1, "--window", 16, "--duration", d,
                    "--pub", t.ws, "--sub", t.ws], MQTT_TARGETS),
        ("latency", f"latency 1 -> 1 WS, QoS 0, {q['rate']} msg/s", "pubsub",
         lambda t: ["pubsub", "--rate", q["rate"], "--duration", d, "--pub", t.ws,
                    "--sub", t.ws], MQTT_TARGETS),
        ("idle_small", f"{q['idle_small']} idle WS connections", "idle",
         lambda t: ["idle", "--conns", q["idle_small"], "--sub", t.ws], MQTT_TARGETS),
        ("idle_large", f"{q['idle_large']} idle WS connections", "idle",
         lambda t: ["idle", "--conns", q["idle_large_of"].get(t.name, q["idle_large"]),
                    "--sub", t.ws], MQTT_TARGETS),
        ("fanout_idle", f"fan-out 1 -> {q['fanout_subs']} QoS 0 beside {q['idle_beside']} idle",
         "beside", lambda t: fan + ["--pub", t.ws, "--sub", t.ws, "--qos", 0], MQTT_TARGETS),
        ("sse_fanout", f"fan-out 1 (TCP) -> {q['sse_subs']} streams (bridge SSE or Mosquitto WS)",
         "pubsub", lambda t: ["pubsub", "--subs", q["sse_subs"], "--window", 32, "--duration",
                              d, "--pub", t.tcp, "--sub", t.sse], HUB_TARGETS),
        ("publish_q0", "publish 8 conns -> 1 TCP sub, QoS 0 (HTTP or MQTT/TCP)", "pubsub",
         lambda t: ["pubsub", "--pubs", 8, "--window", 8, "--duration", d, "--qos", 0,
                    "--pub", t.publish, "--sub", t.tcp], HUB_TARGETS),
        ("publish_q1", "publish 8 conns -> 1 TCP sub, QoS 1 (HTTP or MQTT/TCP)", "pubsub",
         lambda t: ["pubsub", "--pubs", 8, "--window", 8, "--duration", d, "--qos", 1,
                    "--pub", t.publish, "--sub", t.tcp], HUB_TARGETS),
    ]


def paho_scenarios(q):
    """Paho alone (bench/pahoprobe.c), against Mosquitto's TCP listener: name, what a message is,
    the probe's arguments. The same closed loops as the WebSocket scenarios of the same shape."""
    d, subs = q["duration"], q["fanout_subs"]
    fan = ["fanout", "--subs", subs, "--window", 64, "--duration", d]
    return [
        ("paho_fanout_q0", f"fan-out 1 -> {subs} TCP, QoS 0", fan + ["--qos", 0]),
        ("paho_fanout_q1", f"fan-out 1 -> {subs} TCP, QoS 1", fan + ["--qos", 1]),
        ("paho_fanin_q0", "fan-in 10 -> 1 TCP, QoS 0",
         ["fanin", "--pubs", 10, "--window", 16, "--duration", d]),
        ("paho_fanout_idle", f"fan-out 1 -> {subs} TCP, QoS 0 beside {q['idle_beside']} idle",
         fan + ["--qos", 0, "--idle", q["idle_beside"]]),
    ]


# Which WebSocket scenario each probe is Paho's share of.
PAHO_OF = {"paho_fanout_q0": "fanout_q0", "paho_fanout_q1": "fanout_q1",
           "paho_fanin_q0": "fanin_q0", "paho_fanout_idle": "fanout_idle"}


# Builds of Paho the probes run against: the Debian package, and with --paho-hp / --paho-ref a
# scratch build of the same version (its directory loaded first through LD_LIBRARY_PATH).
PAHO_BUILDS = {"paho": "Debian's libpaho-mqtt", "paho_hp": "PAHO_HIGH_PERFORMANCE build",
               "paho_ref": "reference build (not HIGH_PERFORMANCE)"}


class Target:
    """mosq: Mosquitto's WebSocket listener. shared / dedicated: the bridge with that session
    mode. bridge: the bridge in the default mode, for what does not depend on it (SSE, HTTP)."""

    def __init__(self, name, servers):
        s = self.servers = servers
        self.name = name
        self.mode = None if name == "mosq" else MODES.get(name, "auto")
        self.tcp = f"tcp://127.0.0.1:{s.p_tcp}"
        if name == "mosq":
            self.ws = f"ws://127.0.0.1:{s.p_ws}/mqtt"
            self.sse = self.ws  # Mosquitto has no SSE: its WebSocket subscribers stand in
            self.publish = self.tcp  # MQTT over TCP, the yardstick of HTTP publish
        else:
            self.ws = f"ws://127.0.0.1:{s.p_bridge}/mqtt"
            self.sse = f"sse://127.0.0.1:{s.p_bridge}"
            self.publish = f"http://127.0.0.1:{s.p_bridge}"

    @property
    def pids(self):
        """The measured server first; for the bridge, the broker behind it second."""
        s = self.servers
        return [s.mosq.pid] if self.name == "mosq" else [s.bridge.pid, s.mosq.pid]


def run_one(name, kind, argv_of, target, servers, q):
    mode = target.mode or servers.mode  # Mosquitto-WS: whichever bridge runs stays idle
    if kind == "idle" or name == "sse_fanout":
        # Memory is measured as growth: fresh processes, so that what earlier scenarios freed
        # (and malloc kept) does not hide it.
        servers.restart(mode)
    else:
        servers.use(mode)
    waited = settle([servers.bridge.pid, servers.mosq.pid])
    pid_args = [a for p in target.pids for a in ("--pid", p)]
    holder = sessions = None
    if kind == "beside":
        holder = Holder(["idle", "--conns", q["idle_beside"], "--sub", target.ws, "--hold"]
                        + pid_args)
        if not holder.result.get("ok"):
            holder.close()
            return {"ok": False, "raw": holder.result, "error": "idle connections failed"}
        if target.mode:
            sessions = servers.sessions()
        settle(target.pids)
    if kind == "idle":
        # Held open while /metrics says which mode the sessions got, then closed.
        h = Holder(argv_of(target) + ["--hold"] + pid_args)
        res = h.result
        if target.mode and res.get("ok"):
            sessions = servers.sessions()
        h.close()
    else:
        res = loadgen(argv_of(target) + pid_args)
    if holder:
        holder.close()
    out = summarise(res, "idle" if kind == "idle" else "pubsub")
    out["settle_s"] = round(waited, 1)
    out["bridge_mode"] = servers.mode
    if sessions is not None:
        out["sessions"] = sessions
    if not servers.alive():
        out["ok"] = False
        out["error"] = "a server died: " + servers.log_tail("broker.log") + servers.log_tail(
            "bridge.log")
    return out


def paho_env(lib_dir):
    """The probe's environment: @lib_dir's Paho first, or the system's (None)."""
    if not lib_dir:
        return None
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = lib_dir + (":" + env["LD_LIBRARY_PATH"]
                                        if env.get("LD_LIBRARY_PATH") else "")
    return env


def run_paho(argv, servers, lib_dir=None):
    """One probe: its CPU is the probe process's own (what Paho costs), over the measured window.
    With @lib_dir, against the Paho build there instead of the system's."""
    waited = settle([servers.bridge.pid, servers.mosq.pid])
    res = loadgen(argv + ["--broker", f"tcp://127.0.0.1:{servers.p_tcp}"], exe=PAHOPROBE,
                  env=paho_env(lib_dir))
    # "server": the probe is the process measured, as the server is in the other rows.
    out = {"ok": bool(res.get("ok")), "raw": res,
           "server_cpu_us_per_msg": res.get("cpu_us_per_msg")}
    for k in ("msgs_per_s", "lat_p50_us", "lat_p99_us", "lost", "dups", "reorders", "wall_s",
              "setup_s", "paho_lib", "paho_version"):
        if k in res:
            out[k] = res[k]
    out["settle_s"] = round(waited, 1)
    lib = os.path.realpath(res.get("paho_lib", "?"))
    if lib_dir and res.get("ok") and not lib.startswith(os.path.realpath(lib_dir) + "/"):
        out["ok"] = False
        out["error"] = f"the probe loaded {lib}, not the build in {lib_dir}"
    if not servers.alive():
        out["ok"] = False
        out["error"] = "a server died: " + servers.log_tail("broker.log")
    return out


def debian_paho():
    """The system's Paho the probes load by default: its package and file."""
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}",
                            "libpaho-mqtt1.3"], capture_output=True, text=True)
        package = r.stdout.strip() if r.returncode == 0 else "?"
    except OSError:
        package = "?"
    lib = "?"
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"):
        if os.path.exists(os.path.join(d, "libpaho-mqtt3as.so.1")):
            lib = os.path.realpath(os.path.join(d, "libpaho-mqtt3as.so.1"))
            break
    return {"package": package, "lib": lib}


def paho_build_info(lib_dir):
    """What the build in @lib_dir was made with: its CMakeCache's Paho options and C flags, and
    the version its paho-build.txt records, if there is one."""
    info = {"lib_dir": lib_dir}
    d = os.path.abspath(lib_dir)
    for _ in range(3):
        cache = os.path.join(d, "CMakeCache.txt")
        if os.path.exists(cache):
            with open(cache) as f:
                for line in f:
                    k, _, v = line.strip().partition("=")
                    name = k.split(":")[0]
                    if name.startswith("PAHO_") or name in ("CMAKE_BUILD_TYPE", "CMAKE_C_FLAGS",
                                                            "CMAKE_SHARED_LINKER_FLAGS"):
                        info[name] = v
            rec = os.path.join(d, "paho-build.txt")
            if os.path.exists(rec):
                with open(rec) as f:
                    info["record"] = dict(line.strip().split("=", 1) for line in f
                                                 if "=" in line)
            break
        d = os.path.dirname(d)
    return info


# ---- the table ----

def mean(vals):
    vals = [v for v in vals if isinstance(v, (int, float))]
    return sum(vals) / len(vals) if vals else None


def agg(runs, key):
    return mean([r.get(key) for r in runs if r.get("ok")])


def fmt(v, nd=1):
    if v is None:
        return "-"
    if abs(v) >= 10000:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}"


LABEL = {"mosq": "Mosquitto-WS", "shared": "bridge, shared", "dedicated": "bridge, dedicated",
         "bridge": "bridge"}


def status_of(runs):
    n_ok = sum(1 for r in runs if r.get("ok"))
    bad = [r for r in runs if not r.get("ok")]
    why = "error"
    if bad:
        raw = bad[0].get("raw") or {}
        why = bad[0].get("error") or raw.get("error") or "error"
        if any(r.get("lost") for r in bad):
            why = f"{sum(r.get('lost') or 0 for r in bad)} lost, {why}"
    return "yes" if runs and n_ok == len(runs) else (
        f"{n_ok} of {len(runs)} ({why})" if runs else "-")


def each_round(runs, key, nd=0):
    """Each round's value: their mean would hide a bimodal server."""
    vals = [r.get(key) for r in runs if r.get("ok") and r.get(key) is not None]
    return " / ".join(fmt(v, nd) for v in vals) if vals else "-"


def p50s(runs):
    return each_round(runs, "lat_p50_us")


def build_table(results, q):
    """results[scenario][target] = list of runs. Returns (lines, targets, notes)."""
    lines, notes = [], []
    hdr = ("| scenario | target | msg/s | CPU µs/msg | broker µs/msg | bridge + broker µs/msg | "
           "p50 µs (each round) | p99 µs | RSS/conn KiB | set-up s (each round) | gen CPU | ok |")
    lines += [hdr, "|" + "---|" * 12]
    main = [s for s in scenarios(q) if any(results.get(s[0], {}).values())]
    for name, desc, kind, _, _ in main:
        for t, runs in results[name].items():
            if not runs:
                continue
            tl = LABEL[t]
            if name.startswith("publish"):
                tl = "MQTT/TCP" if t == "mosq" else "bridge HTTP"
            if name == "sse_fanout":
                tl = "Mosquitto-WS" if t == "mosq" else "bridge SSE"
            if kind == "idle" and name == "idle_large":
                n = q["idle_large_of"].get(t, q["idle_large"])
                if n != q["idle_large"]:
                    tl += f" ({n})"
            rss = agg(runs, "server_rss_kb_per_conn") if kind == "idle" else (
                agg(runs, "server_rss_kb_per_sub") if name == "sse_fanout" else None)
            bridge = t != "mosq"
            if kind == "idle" and bridge:
                b = agg(runs, "broker_rss_kb_per_conn")
                tot = agg(runs, "total_rss_kb_per_conn")
                broker_txt = "-" if b is None else f"{b:.2f} KiB/conn"
                total_txt = "-" if tot is None else f"{tot:.2f} KiB/conn"
            elif bridge:
                broker_txt = fmt(agg(runs, "broker_cpu_us_per_msg"), 2)
                total_txt = fmt(agg(runs, "total_cpu_us_per_msg"), 2)
            else:
                broker_txt = total_txt = "-"
            gen = agg(runs, "loadgen_cpu_share")
            lines.append(
                f"| {desc} | {tl} | {fmt(agg(runs, 'msgs_per_s'), 0)} | "
                f"{fmt(agg(runs, 'server_cpu_us_per_msg'), 2)} | {broker_txt} | {total_txt} | "
                f"{p50s(runs)} | {fmt(agg(runs, 'lat_p99_us'))} | {fmt(rss, 2)} | "
                f"{each_round(runs, 'connect_s', 1) if kind == 'idle' else '-'} | "
                f"{'-' if gen is None else f'{gen * 100:.0f} %'} | {status_of(runs)} |")
    paho = [s for s in paho_scenarios(q) if any(results.get(s[0], {}).values())]
    for name, desc, _ in paho:
        for build, runs in results[name].items():
            if not runs:
                continue
            who = "Paho alone (pahoprobe)" + ("" if build == "paho" else
                                              ", " + PAHO_BUILDS[build])
            lines.append(
                f"| {desc} | {who} | {fmt(agg(runs, 'msgs_per_s'), 0)} | "
                f"{fmt(agg(runs, 'server_cpu_us_per_msg'), 2)} | - | - | {p50s(runs)} | "
                f"{fmt(agg(runs, 'lat_p99_us'))} | - | "
                f"{each_round(runs, 'setup_s', 1) if 'idle' in name else '-'} | - | "
                f"{status_of(runs)} |")

    def get(name, t, key):
        return agg(results.get(name, {}).get(t, []), key)

    def ratio(a, b):
        return a / b if a is not None and b else None

    def has(t):
        return any(results[s[0]].get(t) for s in main)

    targets = []

    def add(what, value, limit, passed, unit="x"):
        targets.append({"target": what, "value": value, "limit": limit,
                        "pass": (bool(passed) if passed is not None else None)
                        if value is not None else None, "unit": unit})

    def limit(value, lim, op="<="):
        if value is None:
            return None
        return value <= lim if op == "<=" else value >= lim

    def per_conn_connect(t):
        runs = [r for r in results["idle_large"].get(t, []) if r.get("ok")]
        return mean([r["connect_s"] / r["conns"] for r in runs
                     if r.get("connect_s") is not None and r.get("conns")])

    def added_latency(t):
        b, m = get("latency", t, "lat_p50_us"), get("latency", "mosq", "lat_p50_us")
        return b - m if b is not None and m is not None else None

    subs, beside = q["fanout_subs"], q["idle_beside"]
    if main and has("shared"):
        # Issue 12: the bridge with shared sessions.
        for name, qos in (("fanout_q0", 0), ("fanout_q1", 1)):
            r = ratio(get(name, "shared", "total_cpu_us_per_msg"),
                      get(name, "mosq", "server_cpu_us_per_msg"))
            add(f"shared: fan-out 1 -> {subs} QoS {qos}, CPU/msg of bridge + broker / "
                "Mosquitto-WS", r, "<= 1.0", limit(r, 1.0))
        r = ratio(get("fanout_idle", "shared", "server_cpu_us_per_msg"),
                  get("fanout_q0", "shared", "server_cpu_us_per_msg"))
        add(f"shared: fan-out CPU/msg of the bridge beside {beside} idle shared browsers / "
            "without", r, "<= 1.2", limit(r, 1.2))
        r = ratio(get("fanout_idle", "shared", "total_cpu_us_per_msg"),
                  get("fanout_q0", "shared", "total_cpu_us_per_msg"))
        add(f"shared: the same, bridge + broker (information)", r, "-", None)
        r = ratio(per_conn_connect("shared"), per_conn_connect("mosq"))
        add(f"shared: time to connect {q['idle_large']} browsers / Mosquitto-WS", r, "<= 1.0",
            limit(r, 1.0))
        for name in ("idle_small", "idle_large"):
            n = q[name]
            r = ratio(get(name, "shared", "total_rss_kb_per_conn"),
                      get(name, "mosq", "server_rss_kb_per_conn"))
            add(f"shared: RSS per idle browser of bridge + broker / Mosquitto-WS, {n} browsers",
                r, "<= 1.0", limit(r, 1.0))
        r = ratio(get("fanin_q0", "shared", "total_cpu_us_per_msg"),
                  get("fanin_q0", "dedicated", "total_cpu_us_per_msg"))
        add("shared: fan-in 10 -> 1, CPU/msg of bridge + broker / dedicated's (no worse than "
            "today)", r, "<= 1.0", limit(r, 1.0))
        r = ratio(get("fanin_q0", "shared", "total_cpu_us_per_msg"),
                  get("fanin_q0", "mosq", "server_cpu_us_per_msg"))
        add("shared: fan-in 10 -> 1, CPU/msg of bridge + broker / Mosquitto-WS (information)",
            r, "-", None)
        sh, de = added_latency("shared"), added_latency("dedicated")
        add("shared: latency p50 added by the bridge", sh, "<= 60 µs", limit(sh, 60), "µs")
        if de is not None:
            add("shared: latency p50 added by the bridge, vs dedicated's (no worse than today)",
                sh, f"<= {de:.0f} µs", limit(sh, de), "µs")
    if main and has("dedicated"):
        # Issue 7's targets, a Paho client per browser, as before.
        for name in ("fanout_q0", "fanout_q1", "fanin_q0"):
            r = ratio(get(name, "dedicated", "server_cpu_us_per_msg"),
                      get(name, "mosq", "server_cpu_us_per_msg"))
            add(f"dedicated: passthrough CPU/msg, {name}: bridge / Mosquitto-WS", r, "<= 1.3",
                limit(r, 1.3))
        for name in ("fanout_q0", "fanout_q1"):
            r = ratio(get(name, "dedicated", "total_cpu_us_per_msg"),
                      get(name, "mosq", "server_cpu_us_per_msg"))
            add(f"dedicated: CPU/msg, {name}: bridge + broker / Mosquitto-WS (information)", r,
                "-", None)
        de = added_latency("dedicated")
        add("dedicated: latency p50 added by the bridge", de, "<= 60 µs", limit(de, 60), "µs")
        for name in ("idle_small", "idle_large"):
            r = ratio(get(name, "dedicated", "server_rss_kb_per_conn"),
                      get(name, "mosq", "server_rss_kb_per_conn"))
            add(f"dedicated: RSS per idle connection, {name}: bridge / Mosquitto-WS", r, "<= 2",
                limit(r, 2))
        r = ratio(per_conn_connect("dedicated"), per_conn_connect("mosq"))
        add("dedicated: time to connect per browser, idle_large: bridge / Mosquitto-WS "
            "(information)", r, "-", None)
        r = ratio(get("fanout_idle", "dedicated", "server_cpu_us_per_msg"),
                  get("fanout_q0", "dedicated", "server_cpu_us_per_msg"))
        add(f"dedicated: fan-out CPU/msg with {beside} idle / without, bridge", r, "<= 1.10",
            limit(r, 1.10))
    if main and results["fanout_idle"].get("mosq"):
        r = ratio(get("fanout_idle", "mosq", "server_cpu_us_per_msg"),
                  get("fanout_q0", "mosq", "server_cpu_us_per_msg"))
        add(f"fan-out CPU/msg with {beside} idle / without, Mosquitto-WS (for reference)", r,
            "<= 1.10", limit(r, 1.10))
    if main and results.get("sse_fanout", {}).get("bridge"):
        per = get("sse_fanout", "bridge", "server_rss_kb_per_sub")
        add("RSS per SSE stream", per, "<= 4 KiB", limit(per, 4), "KiB")
        r = ratio(get("sse_fanout", "bridge", "server_cpu_us_per_msg"),
                  get("sse_fanout", "mosq", "server_cpu_us_per_msg"))
        add("SSE CPU/event: bridge / Mosquitto-WS CPU/msg", r, "<= 1.0", limit(r, 1.0))
    for name in ("publish_q0", "publish_q1"):
        if main and results.get(name, {}).get("bridge"):
            r = ratio(get(name, "bridge", "msgs_per_s"), get(name, "mosq", "msgs_per_s"))
            add(f"HTTP publish msg/s / MQTT-over-TCP msg/s, {name[-2:].upper()}", r, ">= 0.5",
                limit(r, 0.5, ">="))
    if paho:
        r = ratio(get("paho_fanout_idle", "paho", "server_cpu_us_per_msg"),
                  get("paho_fanout_q0", "paho", "server_cpu_us_per_msg"))
        add(f"fan-out CPU/msg with {beside} idle / without, Paho alone (pahoprobe)", r,
            "<= 1.10", limit(r, 1.10))
        for name, _, _ in paho:
            ws = PAHO_OF[name]
            if ws in results and results[ws].get("dedicated"):
                # Information, no limit: how much of the dedicated bridge's CPU per message
                # is Paho's.
                r = ratio(get(name, "paho", "server_cpu_us_per_msg"),
                          get(ws, "dedicated", "server_cpu_us_per_msg"))
                add(f"CPU/msg, {ws}: Paho alone / bridge, dedicated", r, "-", None)
        for build in ("paho_hp", "paho_ref"):
            for name, _, _ in paho:
                if results[name].get(build):
                    # Information: what Debian's build (heap tracker, stack tracing) costs.
                    r = ratio(get(name, "paho", "server_cpu_us_per_msg"),
                              get(name, build, "server_cpu_us_per_msg"))
                    add(f"Paho alone CPU/msg, {name}: Debian's / {PAHO_BUILDS[build]}", r, "-",
                        None)
    # Which mode the bridge gave the sessions, from its /metrics while they were held.
    for t in ("shared", "dedicated"):
        for name in ("idle_small", "idle_large", "fanout_idle"):
            for r in results.get(name, {}).get(t, []):
                ss = r.get("sessions")
                if ss is None:
                    continue
                shared = sum(v for k, v in ss.items()
                             if k.startswith("mwb_sessions{") and 'mode="shared"' in k)
                labelled = any(k.startswith("mwb_sessions{") and "mode=" in k for k in ss)
                n = (r.get("raw") or {}).get("ready") if name != "fanout_idle" else beside
                if not labelled:
                    notes.append(f"{t}, {name}: mwb_sessions has no mode label ({ss}); "
                                 "which mode the sessions got is not known")
                elif t == "shared" and n and shared < n:
                    notes.append(f"shared, {name}: only {shared:.0f} of {n} held browsers were "
                                 f"shared (mwb_sessions {ss})")
                elif t == "dedicated" and shared:
                    notes.append(f"dedicated, {name}: {shared:.0f} sessions were shared "
                                 f"(mwb_sessions {ss})")
    lines += ["", "| target | value | limit | result |", "|---|---|---|---|"]
    for t in targets:
        res = "-" if t["pass"] is None else ("pass" if t["pass"] else "miss")
        v = "-" if t["value"] is None else f"{t['value']:.2f} {t['unit']}".strip()
        lines.append(f"| {t['target']} | {v} | {t['limit']} | {res} |")
    return lines, targets, sorted(set(notes))


# ---- main ----

def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "loadavg_start": os.getloadavg()}


def build():
    if not os.path.exists(os.path.join(BUILD, "build.ninja")):
        subprocess.run(["meson", "setup", BUILD, "-Dbuildtype=release", "-Dtests=false",
                        "-Dbench=true"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    else:
        subprocess.run(["meson", "configure", BUILD, "-Dbuildtype=release", "-Dbench=true"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", BUILD], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        want = hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return want


def log_run(rnd, name, who, r, servers, tmp, extra):
    """One progress line per measurement; a server that died ends the run."""
    log(f"round {rnd + 1} {name:16s} {who:9s} ok={r.get('ok')} "
        f"msg/s={fmt(r.get('msgs_per_s'), 0)} "
        f"cpu_us/msg={fmt(r.get('server_cpu_us_per_msg'), 2)} {extra} "
        f"p50={fmt(r.get('lat_p50_us'))} settle={r.get('settle_s')}s"
        + ("" if r.get("ok") else f" raw={json.dumps(r.get('raw'))[:300]}"))
    if not servers.alive():
        raise SystemExit("bench: a server died; logs in " + tmp)


def run_bench(a):
    q = {"duration": a.duration, "fanout_subs": 50, "rate": 1000, "idle_small": 2000,
         "idle_large": 10000, "idle_beside": 5000, "sse_subs": 1000}
    if a.quick:
        q.update(duration=2, fanout_subs=10, idle_small=200, idle_large=1000, idle_beside=500,
                 sse_subs=100)
    modes = [m for m in MODES if m in (a.modes or MODES)]
    nofile = raise_nofile()
    notes = []
    # A dedicated session holds two descriptors of the bridge (its WebSocket and its Paho
    # client's broker connection), a shared one holds one; the load generator one per browser.
    q["idle_large_of"] = {}
    for t, per in (("dedicated", 2), ("shared", 1), ("mosq", 1)):
        fit = (nofile - 400) // per
        if fit < q["idle_large"] and not a.paho and (t == "mosq" or t in modes):
            notes.append(f"the hard RLIMIT_NOFILE here is {nofile} (raising it needs "
                         f"CAP_SYS_RESOURCE), and the bridge needs {per} descriptor(s) per "
                         f"{t} browser: the {q['idle_large']} idle connections scenario ran "
                         f"with {fit} for {LABEL[t]}")
            q["idle_large_of"][t] = fit
    q["notes"] = notes
    info = machine()
    paho_libs = {"paho": None}
    for build, d in (("paho_hp", a.paho_hp), ("paho_ref", a.paho_ref)):
        if d:
            d = os.path.abspath(d)
            if os.path.isdir(os.path.join(d, "src")) and not os.path.exists(
                    os.path.join(d, "libpaho-mqtt3as.so.1")):
                d = os.path.join(d, "src")  # the cmake build directory was given
            if not os.path.exists(os.path.join(d, "libpaho-mqtt3as.so.1")):
                raise SystemExit(f"bench: no libpaho-mqtt3as.so.1 in {d}")
            paho_libs[build] = d
            info.setdefault("paho_builds", {})[build] = paho_build_info(d)
    if len(paho_libs) > 1:
        info["paho_builds"]["paho"] = debian_paho()
    tmp = tempfile.mkdtemp(prefix="mwb-bench-")
    servers = Servers(tmp, MODES[modes[0]] if modes else "auto")
    # --paho: only the probes of Paho alone, which otherwise follow the other scenarios.
    rounds = 0 if a.paho else a.rounds
    results = {}
    if not a.paho:
        for name, _, _, _, targets in scenarios(q):
            results[name] = {t: [] for t in targets if t not in MODES or t in modes}
    results.update({name: {b: [] for b in paho_libs} for name, *_ in paho_scenarios(q)})
    t0 = time.time()
    try:
        targets = {t: Target(t, servers) for t in ("mosq", "bridge") + tuple(MODES)}
        for rnd in range(rounds):
            for name, desc, kind, argv_of, _ in scenarios(q):
                if a.only and name not in a.only:
                    continue
                # Mosquitto-WS first (beside whichever bridge runs, idle), then the bridge in the
                # mode it already runs in, then the other: one restart of the bridge a scenario.
                order = [t for t in results[name] if t not in MODES]
                cur = [t for t in results[name] if MODES.get(t) == servers.mode]
                order += cur + [t for t in results[name] if t in MODES and t not in cur]
                for t in order:
                    r = run_one(name, kind, argv_of, targets[t], servers, q)
                    results[name][t].append(r)
                    log_run(rnd, name, t, r, servers, tmp,
                            f"total_us/msg={fmt(r.get('total_cpu_us_per_msg'), 2)} "
                            f"rss/conn={fmt(r.get('server_rss_kb_per_conn'), 2)} "
                            f"total_rss/conn={fmt(r.get('total_rss_kb_per_conn'), 2)} "
                            f"connect={fmt(r.get('connect_s'), 2)}s"
                            + (f" sessions={r['sessions']}" if "sessions" in r else ""))
        t_paho = time.time()
        for rnd in range(a.rounds):
            for name, desc, argv in paho_scenarios(q):
                if a.only and name not in a.only:
                    continue
                for build, lib_dir in paho_libs.items():
                    r = run_paho(argv, servers, lib_dir)
                    results[name][build].append(r)
                    log_run(rnd, name, build, r, servers, tmp,
                            f"setup={r.get('setup_s')}s paho={r.get('paho_version')}")
        info["paho_s"] = round(time.time() - t_paho, 1)
    finally:
        servers.stop()
    info["loadavg_end"] = os.getloadavg()
    info["elapsed_s"] = round(time.time() - t0, 1)
    info["commit"] = git_head()
    lines, tgts, checks = build_table(results, q)
    head = (f"mqtt-web-bridge bench, {time.strftime('%Y-%m-%d %H:%M')}: {info['nproc']} cores, "
            f"{info['cpu']}, Linux {info['kernel']}, load average at start "
            f"{info['loadavg_start'][0]:.2f}, run {info['elapsed_s']} s, "
            f"{a.rounds} rounds (means), {q['duration']} s per measurement"
            + (f", Paho alone {info['paho_s']} s of it" if info.get("paho_s", 0) >= 1 else "")
            + (f", commit {info['commit']}" if info["commit"] else ""))
    print(head)
    for n in notes + checks:
        print("Note: " + n)
    for build, b in info.get("paho_builds", {}).items():
        if build == "paho":
            print(f"Paho {PAHO_BUILDS[build]}: {b.get('package')}, {b.get('lib')}")
            continue
        keys = ("PAHO_HIGH_PERFORMANCE", "PAHO_WITH_SSL", "PAHO_BUILD_STATIC", "CMAKE_BUILD_TYPE",
                "CMAKE_C_FLAGS")
        version = b.get("record", {}).get("version", "?")
        print(f"Paho {PAHO_BUILDS[build]} ({b['lib_dir']}): version {version}, "
              + ", ".join(f"{k}={b[k]}" for k in keys if k in b))
    print()
    print("\n".join(lines))
    os.makedirs(RESULTS, exist_ok=True)
    out = a.out or os.path.join(RESULTS, "quick.json" if a.quick else
                                "paho.json" if a.paho else "latest.json")
    with open(out, "w") as f:
        json.dump({"machine": info, "scales": q, "results": results, "targets": tgts,
                   "checks": checks, "table": lines}, f, indent=1)
    log(f"bench: wrote {out}")
    ok = all(r.get("ok") for s in results.values() for runs in s.values() for r in runs)
    return 0 if ok else 1


def git_head():
    """The commit measured (with "+" if the work tree differs from it), or None."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no",
                                "--", "bridge", "web"], capture_output=True, text=True).stdout
        return head + ("+" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def run_soak(a):
    raise_nofile()
    info = machine()
    tmp = tempfile.mkdtemp(prefix="mwb-soak-")
    servers = Servers(tmp, a.mode)
    total = a.minutes * 60
    warm = min(60, total / 5)
    url = f"ws://127.0.0.1:{servers.p_bridge}/mqtt"
    samples = []
    try:
        p = subprocess.Popen([LOADGEN, "churn", "--conns", str(a.soak_conns), "--duration",
                              str(int(total)), "--sub", url], stdout=subprocess.PIPE, text=True)
        t0 = time.time()
        mark_warm = mark_end = None
        while p.poll() is None:
            time.sleep(5)
            el = time.time() - t0
            s = {"t_s": round(el), "bridge_rss_kb": rss_kb(servers.bridge.pid),
                 "broker_rss_kb": rss_kb(servers.mosq.pid)}
            samples.append(s)
            if mark_warm is None and el >= warm:
                mark_warm = s
            if el <= total - 3:
                mark_end = s
            log(f"soak t={s['t_s']}s bridge RSS {s['bridge_rss_kb']} KiB, broker RSS "
                f"{s['broker_rss_kb']} KiB")
        churn = json.loads(p.stdout.read().strip().splitlines()[-1])
        settle([servers.bridge.pid, servers.mosq.pid])
        after = {"bridge_rss_kb": rss_kb(servers.bridge.pid),
                 "broker_rss_kb": rss_kb(servers.mosq.pid)}
    finally:
        servers.stop()
    growth = (mark_end["bridge_rss_kb"] / mark_warm["bridge_rss_kb"] - 1) if mark_warm else None
    passed = growth is not None and growth <= 0.10 and churn.get("ok")
    print(f"soak: {a.minutes} min, {a.soak_conns} client slots connecting and leaving; "
          f"{churn.get('connects')} connections ({churn.get('clean')} clean DISCONNECT, "
          f"{churn.get('abrupt')} dropped), errors {churn.get('errors')}")
    print(f"bridge RSS after warm-up ({mark_warm and mark_warm['t_s']} s): "
          f"{mark_warm and mark_warm['bridge_rss_kb']} KiB; at the end "
          f"({mark_end and mark_end['t_s']} s): {mark_end and mark_end['bridge_rss_kb']} KiB; "
          f"growth {growth * 100 if growth is not None else float('nan'):.1f} % "
          f"(target <= 10 %): {'pass' if passed else 'miss'}; after the clients left: "
          f"{after['bridge_rss_kb']} KiB")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "soak.json"), "w") as f:
        json.dump({"machine": info, "churn": churn, "warm": mark_warm, "end": mark_end,
                   "after": after, "growth": growth, "pass": passed, "samples": samples}, f,
                  indent=1)
    return 0 if passed else 1


def strace_counts(path):
    """{syscall: calls} from the summary `strace -c` writes."""
    counts = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            # % time, seconds, usecs/call, calls, [errors,] syscall
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                try:
                    counts[parts[-1]] = int(parts[3])
                except ValueError:
                    pass
    return counts


def run_syscalls(a):
    """The latency scenario (1 -> 1 over WebSocket, 1,000 msg/s) with `strace -c -f` attached to
    each server: system calls per delivered message, by name. Timings under strace mean nothing;
    the counts are what each message costs in kernel crossings and thread hand-offs."""
    if not shutil.which("strace"):
        raise SystemExit("bench: --syscalls needs strace (apt-get install strace)")
    raise_nofile()
    tmp = tempfile.mkdtemp(prefix="mwb-syscalls-")
    servers = Servers(tmp, a.mode)
    columns = {}
    try:
        for name in ("mosq", "bridge"):
            t = Target(name, servers)
            settle(t.pids)
            tracers = []
            for i, pid in enumerate(t.pids):
                out = os.path.join(tmp, f"strace-{name}-{i}.txt")
                tracers.append((subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", out],
                                                 stderr=subprocess.DEVNULL), out))
            time.sleep(1.0)  # attached to every thread before the first message
            res = loadgen(["pubsub", "--rate", 1000, "--duration", a.duration, "--pub", t.ws,
                           "--sub", t.ws])
            for p, _ in tracers:
                p.send_signal(signal.SIGINT)
                p.wait(30)
            if not res.get("ok"):
                raise SystemExit(f"bench: the run against {name} failed: {json.dumps(res)[:300]}")
            n = res["delivered"]
            labels = ["Mosquitto-WS"] if name == "mosq" else ["bridge", "broker behind it"]
            for label, (_, out) in zip(labels, tracers):
                columns[label] = {k: v / n for k, v in strace_counts(out).items()}
    finally:
        servers.stop()
    names = sorted({k for c in columns.values() for k in c},
                   key=lambda k: -max(c.get(k, 0) for c in columns.values()))
    labels = list(columns)
    lines = ["| system call | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for k in names:
        if max(c.get(k, 0) for c in columns.values()) >= 0.05:
            lines.append(f"| {k} | " + " | ".join(f"{columns[l].get(k, 0):.2f}" for l in labels)
                         + " |")
    lines.append("| **all** | " + " | ".join(f"**{sum(columns[l].values()):.1f}**"
                                             for l in labels) + " |")
    print(f"system calls per delivered message, 1 -> 1 over WebSocket at 1,000 msg/s, "
          f"{a.duration} s (strace -c -f on each server)")
    print("\n".join(lines))
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "syscalls.json"), "w") as f:
        json.dump({"machine": machine(), "per_message": columns, "table": lines}, f, indent=1)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small scales, 2 s runs (development)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", nargs="*", help="scenario names to run")
    ap.add_argument("--out", help="JSON file (default bench/results/latest.json)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--soak", action="store_true", help="the soak instead of the benchmark")
    ap.add_argument("--minutes", type=float, default=10, help="soak length")
    ap.add_argument("--soak-conns", type=int, default=200, help="soak client slots")
    ap.add_argument("--syscalls", action="store_true",
                    help="system calls per message (strace) instead of the benchmark")
    ap.add_argument("--paho", action="store_true",
                    help="only the probes of Paho alone (bench/pahoprobe.c)")
    ap.add_argument("--paho-hp", metavar="DIR",
                    help="the Paho probes also against the build whose libpaho-mqtt3as.so.1 is "
                         "in DIR (PAHO_HIGH_PERFORMANCE=ON)")
    ap.add_argument("--paho-ref", metavar="DIR",
                    help="and against this one (the same source and flags without "
                         "PAHO_HIGH_PERFORMANCE)")
    ap.add_argument("--modes", nargs="*", choices=list(MODES),
                    help="bridge session modes to measure (default: shared and dedicated)")
    ap.add_argument("--mode", choices=("auto", "dedicated"), default="auto",
                    help="the bridge's mqtt_sessions for --soak and --syscalls")
    a = ap.parse_args()
    if not a.no_build:
        build()
    if a.syscalls:
        return run_syscalls(a)
    return run_soak(a) if a.soak else run_bench(a)


if __name__ == "__main__":
    sys.exit(main())
