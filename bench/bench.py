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

Python 3 standard library only. Every process it starts is stopped by its PID. This file holds the
commands; bench/benchlib/ the rest (servers.py the processes and the servers under test,
scenarios.py what is measured, report.py the table).
"""
import argparse
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchlib.common import BUILD, LOADGEN, NOFILE, RESULTS, ROOT, log
from benchlib.servers import MODES, Servers, loadgen, rss_kb, settle
from benchlib.scenarios import (PAHO_BUILDS, Target, debian_paho, paho_build_info,
                                paho_scenarios, run_one, run_paho, scenarios)
from benchlib.report import LABEL, build_table, fmt


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
