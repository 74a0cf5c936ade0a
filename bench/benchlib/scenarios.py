"""The scenarios, the targets they run against, and one measurement of a scenario on a target;
the probes of Paho alone."""
import os
import subprocess

from .common import PAHOPROBE
from .servers import Holder, MODES, loadgen, settle, summarise


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
