"""The table: means of the rounds, ratios and the targets each row is checked against."""

from .scenarios import PAHO_BUILDS, PAHO_OF, paho_scenarios, scenarios


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
