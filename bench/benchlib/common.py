"""Paths and constants of the benchmark, and its progress log (stderr)."""
import os
import sys


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
