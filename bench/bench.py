#!/usr/bin/python3
"""bench/bench.py — the benchmark of issue 7: the bridge beside Mosquitto's own WebSocket listener.

One command (from the repository root):  bench/bench.py
  builds build-bench/ (release, with bench/loadgen), starts a private Mosquitto (a TCP and a
  WebSocket listener) and the bridge in front of it on free loopback ports, runs every scenario
  against (a) Mosquitto's WebSocket listener and (b) the bridge, interleaved, twice, prints a table
  and writes bench/results/latest.json. A few minutes. Never part of the test command.

  bench/bench.py --quick          small scales and short runs, for development
  bench/bench.py --soak [--minutes 10]
                                  clients connecting and leaving; RSS at the end vs after warm-up
  bench/bench.py --syscalls       system calls per message (strace -c) of the latency scenario,
                                  for Mosquitto-WS, the bridge and the broker behind it
  bench/bench.py --paho           only the probes of Paho alone (bench/pahoprobe.c: MQTTAsync
                                  clients in one process against Mosquitto's TCP listener, none
                                  of the bridge), which the full run also does after the rest;
                                  writes bench/results/paho.json

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


class Servers:
    """The private Mosquitto and the bridge in front of it."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []
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
        cfg = self.cfg = os.path.join(tmp, "bridge.json")
        with open(cfg, "w") as f:
            json.dump({
                "listen": f"127.0.0.1:{self.p_bridge}",
                "broker": {"url": f"mqtt://127.0.0.1:{self.p_tcp}"},
                "static_dir": os.path.join(ROOT, "static"),
                "log_level": "warn",
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
        self.bridge = self._start([BRIDGE, "--config", self.cfg], "bridge.log")
        wait_port(self.p_bridge, self.bridge, "the bridge")
        time.sleep(0.5)  # the hub's own broker connections

    def restart(self):
        self.stop()
        self.start()

    def _start(self, argv, logname):
        out = open(os.path.join(self.tmp, logname), "a")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp)
        out.close()
        self.procs.append(p)
        return p

    def alive(self):
        return all(p.poll() is None for p in self.procs)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()

    def log_tail(self, name, n=5):
        try:
            with open(os.path.join(self.tmp, name)) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


# ---- running the load generator ----

def loadgen(args, timeout=300, exe=None):
    exe = exe or LOADGEN
    r = subprocess.run([exe] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
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
    for k in ("msgs_per_s", "lat_p50_us", "lat_p99_us", "lost", "dups", "reorders",
              "loadgen_cpu_s", "wall_s", "connect_s"):
        if k in res:
            out[k] = res[k]
    if kind != "idle" and res.get("wall_s"):
        # Near 1.0 the generator itself may have limited the rate.
        out["loadgen_cpu_share"] = round(res.get("loadgen_cpu_s", 0) / res["wall_s"], 2)
    return out


# ---- scenarios ----

def scenarios(q):
    """Each: name, what a message is, and per target (mosq, bridge) how to run it."""
    d = q["duration"]
    fan = ["pubsub", "--subs", q["fanout_subs"], "--window", 64, "--duration", d]
    return [
        ("fanout_q0", f"fan-out 1 -> {q['fanout_subs']} WS, QoS 0", "pubsub",
         lambda t: fan + ["--pub", t.ws, "--sub", t.ws, "--qos", 0]),
        ("fanout_q1", f"fan-out 1 -> {q['fanout_subs']} WS, QoS 1", "pubsub",
         lambda t: fan + ["--pub", t.ws, "--sub", t.ws, "--qos", 1]),
        ("fanin_q0", "fan-in 10 -> 1 WS, QoS 0", "pubsub",
         lambda t: ["pubsub", "--pubs", 10, "--subs", 1, "--window", 16, "--duration", d,
                    "--pub", t.ws, "--sub", t.ws]),
        ("latency", f"latency 1 -> 1 WS, QoS 0, {q['rate']} msg/s", "pubsub",
         lambda t: ["pubsub", "--rate", q["rate"], "--duration", d, "--pub", t.ws,
                    "--sub", t.ws]),
        ("idle_small", f"{q['idle_small']} idle WS connections", "idle",
         lambda t: ["idle", "--conns", q["idle_small"], "--sub", t.ws]),
        ("idle_large", f"{q['idle_large']} idle WS connections", "idle",
         lambda t: ["idle", "--conns", q["idle_large"], "--sub", t.ws]),
        ("fanout_idle", f"fan-out 1 -> {q['fanout_subs']} QoS 0 beside {q['idle_beside']} idle",
         "beside", lambda t: fan + ["--pub", t.ws, "--sub", t.ws, "--qos", 0]),
        ("sse_fanout", f"fan-out 1 (TCP) -> {q['sse_subs']} streams (bridge SSE or Mosquitto WS)",
         "pubsub", lambda t: ["pubsub", "--subs", q["sse_subs"], "--window", 32, "--duration",
                              d, "--pub", t.tcp, "--sub", t.sse]),
        ("publish_q0", "publish 8 conns -> 1 TCP sub, QoS 0 (HTTP or MQTT/TCP)", "pubsub",
         lambda t: ["pubsub", "--pubs", 8, "--window", 8, "--duration", d, "--qos", 0,
                    "--pub", t.publish, "--sub", t.tcp]),
        ("publish_q1", "publish 8 conns -> 1 TCP sub, QoS 1 (HTTP or MQTT/TCP)", "pubsub",
         lambda t: ["pubsub", "--pubs", 8, "--window", 8, "--duration", d, "--qos", 1,
                    "--pub", t.publish, "--sub", t.tcp]),
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


class Target:
    def __init__(self, name, servers):
        s = self.servers = servers
        self.name = name
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
    if kind == "idle" or name == "sse_fanout":
        # Memory is measured as growth: fresh processes, so that what earlier scenarios freed
        # (and malloc kept) does not hide it.
        servers.restart()
    waited = settle([servers.bridge.pid, servers.mosq.pid])
    pid_args = [a for p in target.pids for a in ("--pid", p)]
    holder = None
    if kind == "beside":
        holder = Holder(["idle", "--conns", q["idle_beside"], "--sub", target.ws, "--hold"]
                        + pid_args)
        if not holder.result.get("ok"):
            holder.close()
            return {"ok": False, "raw": holder.result, "error": "idle connections failed"}
        settle(target.pids)
    res = loadgen(argv_of(target) + pid_args)
    if holder:
        holder.close()
    out = summarise(res, "idle" if kind == "idle" else "pubsub")
    out["settle_s"] = round(waited, 1)
    if not servers.alive():
        out["ok"] = False
        out["error"] = "a server died: " + servers.log_tail("broker.log") + servers.log_tail(
            "bridge.log")
    return out


def run_paho(argv, servers):
    """One probe: its CPU is the probe process's own (what Paho costs), over the measured window."""
    waited = settle([servers.bridge.pid, servers.mosq.pid])
    res = loadgen(argv + ["--broker", f"tcp://127.0.0.1:{servers.p_tcp}"], exe=PAHOPROBE)
    # "server": the probe is the process measured, as the server is in the other rows.
    out = {"ok": bool(res.get("ok")), "raw": res,
           "server_cpu_us_per_msg": res.get("cpu_us_per_msg")}
    for k in ("msgs_per_s", "lat_p50_us", "lat_p99_us", "lost", "dups", "reorders", "wall_s",
              "setup_s"):
        if k in res:
            out[k] = res[k]
    out["settle_s"] = round(waited, 1)
    if not servers.alive():
        out["ok"] = False
        out["error"] = "a server died: " + servers.log_tail("broker.log")
    return out


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


def p50s(runs):
    """Each round's p50: their mean would hide a bimodal server."""
    vals = [r.get("lat_p50_us") for r in runs if r.get("ok") and r.get("lat_p50_us") is not None]
    return " / ".join(fmt(v, 0) for v in vals) if vals else "-"


def build_table(results, q):
    """results[scenario][target] = list of runs. Returns (lines, targets)."""
    lines = []
    hdr = ("| scenario | target | msg/s | CPU µs/msg | broker µs/msg | p50 µs (each round) | p99 µs | "
           "RSS/conn KiB | gen CPU | ok |")
    lines += [hdr, "|" + "---|" * 10]
    label = {"mosq": "Mosquitto-WS", "bridge": "bridge"}
    main = [s for s in scenarios(q) if s[0] in results]
    for name, desc, kind, _ in main:
        for t in ("mosq", "bridge"):
            runs = results[name][t]
            ok = bool(runs) and all(r.get("ok") for r in runs)
            tl = label[t]
            if name.startswith("publish"):
                tl = "MQTT/TCP" if t == "mosq" else "bridge HTTP"
            if name == "sse_fanout":
                tl = "Mosquitto-WS" if t == "mosq" else "bridge SSE"
            rss = agg(runs, "server_rss_kb_per_conn") if kind == "idle" else (
                agg(runs, "server_rss_kb_per_sub") if name == "sse_fanout" else None)
            n_ok = sum(1 for r in runs if r.get("ok"))
            why = "loss" if any(r.get("lost") for r in runs) else "error"
            status = "yes" if ok else f"{n_ok} of {len(runs)} ({why})" if runs else "-"
            broker = agg(runs, "broker_cpu_us_per_msg") if t == "bridge" else None
            if kind == "idle" and t == "bridge":
                b = agg(runs, "broker_rss_kb_per_conn")
                broker_txt = "-" if b is None else f"{b:.2f} KiB/conn"
            else:
                broker_txt = fmt(broker, 2)
            gen = agg(runs, "loadgen_cpu_share")
            lines.append(
                f"| {desc} | {tl} | {fmt(agg(runs, 'msgs_per_s'), 0)} | "
                f"{fmt(agg(runs, 'server_cpu_us_per_msg'), 2)} | "
                f"{broker_txt} | "
                f"{p50s(runs)} | {fmt(agg(runs, 'lat_p99_us'))} | "
                f"{fmt(rss, 2)} | {'-' if gen is None else f'{gen * 100:.0f} %'} | "
                f"{status} |")
    paho = [s for s in paho_scenarios(q) if s[0] in results]
    for name, desc, _ in paho:
        runs = results[name]["paho"]
        n_ok = sum(1 for r in runs if r.get("ok"))
        why = "loss" if any(r.get("lost") for r in runs) else "error"
        status = "yes" if runs and n_ok == len(runs) else (
            f"{n_ok} of {len(runs)} ({why})" if runs else "-")
        lines.append(
            f"| {desc} | Paho alone (pahoprobe) | {fmt(agg(runs, 'msgs_per_s'), 0)} | "
            f"{fmt(agg(runs, 'server_cpu_us_per_msg'), 2)} | - | {p50s(runs)} | "
            f"{fmt(agg(runs, 'lat_p99_us'))} | - | - | {status} |")

    def both(name, key):
        return agg(results[name]["bridge"], key), agg(results[name]["mosq"], key)

    def ratio(a, b):
        return a / b if a is not None and b else None

    targets = []

    def add(what, value, limit, passed, unit=""):
        targets.append({"target": what, "value": value, "limit": limit,
                        "pass": passed if value is not None else None, "unit": unit})

    if main:
        for name in ("fanout_q0", "fanout_q1", "fanin_q0"):
            r = ratio(*both(name, "server_cpu_us_per_msg"))
            add(f"passthrough CPU/msg, {name}: bridge / Mosquitto-WS", r, "<= 1.3",
                r is not None and r <= 1.3, "x")
        b, m = both("latency", "lat_p50_us")
        added = b - m if b is not None and m is not None else None
        add("latency p50 added by the bridge", added, "<= 60 µs",
            added is not None and added <= 60, "µs")
        for name in ("idle_small", "idle_large"):
            r = ratio(*both(name, "server_rss_kb_per_conn"))
            add(f"RSS per idle connection, {name}: bridge / Mosquitto-WS", r, "<= 2",
                r is not None and r <= 2, "x")
        per = agg(results["sse_fanout"]["bridge"], "server_rss_kb_per_sub")
        add("RSS per SSE stream", per, "<= 4 KiB", per is not None and per <= 4, "KiB")
        r = ratio(*both("sse_fanout", "server_cpu_us_per_msg"))
        add("SSE CPU/event: bridge / Mosquitto-WS CPU/msg", r, "<= 1.0",
            r is not None and r <= 1.0, "x")
        for t in ("bridge", "mosq"):
            r = ratio(agg(results["fanout_idle"][t], "server_cpu_us_per_msg"),
                      agg(results["fanout_q0"][t], "server_cpu_us_per_msg"))
            who = "bridge" if t == "bridge" else "Mosquitto-WS (for reference)"
            add(f"fan-out CPU/msg with {q['idle_beside']} idle / without, {who}", r, "<= 1.10",
                r is not None and r <= 1.10, "x")
        for name in ("publish_q0", "publish_q1"):
            r = ratio(*both(name, "msgs_per_s"))
            add(f"HTTP publish msg/s / MQTT-over-TCP msg/s, {name[-2:].upper()}", r, ">= 0.5",
                r is not None and r >= 0.5, "x")
    if paho:
        def probe(name):
            return agg(results.get(name, {}).get("paho", []), "server_cpu_us_per_msg")
        r = ratio(probe("paho_fanout_idle"), probe("paho_fanout_q0"))
        add(f"fan-out CPU/msg with {q['idle_beside']} idle / without, Paho alone (pahoprobe)", r,
            "<= 1.10", r is not None and r <= 1.10, "x")
        for name, _, _ in paho:
            ws = PAHO_OF[name]
            if ws in results:
                # Information, no limit: how much of the bridge's CPU per message is Paho's.
                r = ratio(probe(name), agg(results[ws]["bridge"], "server_cpu_us_per_msg"))
                add(f"CPU/msg, {ws}: Paho alone / bridge", r, "-", None, "x")
    lines += ["", "| target | value | limit | result |", "|---|---|---|---|"]
    for t in targets:
        res = "-" if t["pass"] is None else ("pass" if t["pass"] else "miss")
        v = "-" if t["value"] is None else f"{t['value']:.2f} {t['unit']}".strip()
        lines.append(f"| {t['target']} | {v} | {t['limit']} | {res} |")
    return lines, targets


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
    log(f"round {rnd + 1} {name:16s} {who:6s} ok={r.get('ok')} "
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
    nofile = raise_nofile()
    notes = []
    # The bridge holds two descriptors per idle browser (its WebSocket and its broker connection).
    fit = (nofile - 400) // 2
    if fit < q["idle_large"] and not a.paho:
        notes.append(f"the hard RLIMIT_NOFILE here is {nofile} (raising it needs "
                     f"CAP_SYS_RESOURCE), and the bridge needs two descriptors per browser: the "
                     f"{q['idle_large']} idle connections scenario ran with {fit}")
        q["idle_large"] = fit
    q["notes"] = notes
    info = machine()
    tmp = tempfile.mkdtemp(prefix="mwb-bench-")
    servers = Servers(tmp)
    # --paho: only the probes of Paho alone, which otherwise follow the other scenarios.
    rounds = 0 if a.paho else a.rounds
    results = {} if a.paho else {name: {"mosq": [], "bridge": []} for name, *_ in scenarios(q)}
    results.update({name: {"paho": []} for name, *_ in paho_scenarios(q)})
    t0 = time.time()
    try:
        targets = {t: Target(t, servers) for t in ("mosq", "bridge")}
        for rnd in range(rounds):
            for name, desc, kind, argv_of in scenarios(q):
                if a.only and name not in a.only:
                    continue
                for t in ("mosq", "bridge"):
                    r = run_one(name, kind, argv_of, targets[t], servers, q)
                    results[name][t].append(r)
                    log_run(rnd, name, t, r, servers, tmp,
                            f"rss/conn={fmt(r.get('server_rss_kb_per_conn'), 2)}")
        t_paho = time.time()
        for rnd in range(a.rounds):
            for name, desc, argv in paho_scenarios(q):
                if a.only and name not in a.only:
                    continue
                r = run_paho(argv, servers)
                results[name]["paho"].append(r)
                log_run(rnd, name, "paho", r, servers, tmp, f"setup={r.get('setup_s')}s")
        info["paho_s"] = round(time.time() - t_paho, 1)
    finally:
        servers.stop()
    info["loadavg_end"] = os.getloadavg()
    info["elapsed_s"] = round(time.time() - t0, 1)
    lines, tgts = build_table(results, q)
    head = (f"mqtt-web-bridge bench, {time.strftime('%Y-%m-%d %H:%M')}: {info['nproc']} cores, "
            f"{info['cpu']}, Linux {info['kernel']}, load average at start "
            f"{info['loadavg_start'][0]:.2f}, run {info['elapsed_s']} s, "
            f"{a.rounds} rounds (means), {q['duration']} s per measurement"
            + (f", Paho alone {info['paho_s']} s of it" if "paho_s" in info else ""))
    print(head)
    for n in notes:
        print("Note: " + n)
    print()
    print("\n".join(lines))
    os.makedirs(RESULTS, exist_ok=True)
    out = a.out or os.path.join(RESULTS, "quick.json" if a.quick else
                                "paho.json" if a.paho else "latest.json")
    with open(out, "w") as f:
        json.dump({"machine": info, "scales": q, "results": results, "targets": tgts,
                   "table": lines}, f, indent=1)
    log(f"bench: wrote {out}")
    ok = all(r.get("ok") for s in results.values() for runs in s.values() for r in runs)
    return 0 if ok else 1


def run_soak(a):
    raise_nofile()
    info = machine()
    tmp = tempfile.mkdtemp(prefix="mwb-soak-")
    servers = Servers(tmp)
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
    servers = Servers(tmp)
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
    a = ap.parse_args()
    if not a.no_build:
        build()
    if a.syscalls:
        return run_syscalls(a)
    return run_soak(a) if a.soak else run_bench(a)


if __name__ == "__main__":
    sys.exit(main())
