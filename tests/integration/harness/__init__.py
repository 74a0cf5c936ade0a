"""Integration test harness: a real Mosquitto, the real bridge, real clients.

MWB_TARGET=bridge (default): the WebSocket endpoint under test is the bridge's ws://127.0.0.1:PORT/mqtt,
in front of Mosquitto's TCP listener; MWB_BINARY names the bridge executable (required).
MWB_TARGET=mosquitto: the endpoint under test is Mosquitto's own WebSocket listener. This is how the
tests themselves are validated: every behaviour the bridge shares with a broker must pass there too.
Tests that only make sense for the bridge are decorated with @bridge_only and are skipped ONLY for
MWB_TARGET=mosquitto.

MWB_SESSIONS=auto (default) or dedicated: the bridge's session mode. Every bridge started here gets
it as "mqtt_sessions" in its config file, unless the test's own config sets "mqtt_sessions". In
auto a session that allows it is shared (served by the hub: clean start, session expiry 0, no
will, and an identity the bridge vouches for: mqtt_credentials "bridge", or auth.mode "none" and
no username or password); every other session, and every session in dedicated, has its own
upstream client the broker sees. SHARED says whether such sessions are shared in this run (and
IntegrationCase.shared for a class's own bridge_config); IntegrationCase.dedicated_will() gives a
will that makes a session dedicated in every mode; a test that rewrites a bridge's config file
(SIGHUP) keeps the mode with with_sessions() or Bridge.write_config().

MWB_TEST_BROKER=mosquitto (default) or rabbitmq: the broker behind the bridge. With rabbitmq, each
test process starts one private RabbitMQ node (Debian's rabbitmq-server 3.10 with its MQTT plugin,
MQTT 3.1.1 only; class RabbitMQ) on free loopback ports, with its own node name, epmd port and
directories, and every Stack of that process uses it (and waits for the bridge's hub, whose first
connection takes an MQTT 5 attempt longer there). Observers (the tests' own TCP clients on the
broker) then speak MQTT 3.1.1 even where a test asks for V5 (observer_version()). What a test
needs that the broker may lack (BROKER_FEATURES: Mosquitto itself, MQTT 5 upstream, QoS 2 at the
broker, retained messages for wildcard filters, $share subscriptions, '.' in topics) is stated
with @broker_needs(feature, reason), or skip_unless_broker() in a subTest, and skipped ONLY when
the broker lacks it (BROKER_LACKS), with both reasons. (The name is not MWB_BROKER: scripts/run.sh
takes MWB_BROKER as a broker URL.) MWB_TARGET=mosquitto needs the Mosquitto broker.

Every process started here is stopped by its PID (SIGTERM, bounded wait, SIGKILL) from a cleanup that
runs also when a test fails (a RabbitMQ node by its process group: beam.smp, erl_child_setup and
their helpers; its epmd is a process of its own). Every wait is bounded.

The package has one module per concern: settings (the run: target, sessions, broker, bounds),
processes (spawn, stop by PID, ports, logs), brokers (Mosquitto, RabbitMQ), bridge (the bridge
process, Stack), mqtt_clients (paho wrappers), api (HTTP, SSE, /metrics), cases
(IntegrationCase, ApiCase), browser (Chromium driver, a second origin), proxy (TcpProxy), nginx,
and waits (bounded waits on a condition). Tests import the names from here:
`import harness as h`, `from harness import X`.
"""

# Modules the single-file harness had at its top level, which tests reach as harness.queue,
# harness.subprocess, harness.unittest and harness.mqtt.
import queue  # noqa: F401
import subprocess  # noqa: F401
import unittest

import paho.mqtt.client as mqtt  # noqa: F401
from paho.mqtt.packettypes import PacketTypes  # noqa: F401
from paho.mqtt.properties import Properties  # noqa: F401

from .api import (HttpResponse, KeepAlive, SseEvent, SseStream, http_request,  # noqa: F401
                  metric, prom_samples, quote_query, quote_topic, raw_http)
from .bridge import Bridge, Stack, start_bridge, wait_hub  # noqa: F401
from .brokers import (EPMD, MOSQUITTO, MOSQUITTO_PASSWD, MOSQUITTO_TUNING,  # noqa: F401
                      RABBITMQ_BOOT_TIMEOUT, RABBITMQ_SERVER, RABBITMQ_STOP_TIMEOUT, Mosquitto,
                      RabbitMQ, rabbitmq_node, start_broker, start_mosquitto, wait_mqtt)
from .browser import (ARTIFACTS, BROWSER_DIR, CHROMIUM, NODE, BrowserDriver,  # noqa: F401
                      StaticServer, kill_pids_with_arg)
from .cases import CURL, ApiCase, IntegrationCase  # noqa: F401
from .mqtt_clients import Paho, TcpObserver, make_client, props  # noqa: F401
from .nginx import NGINX, NGINX_EXAMPLES, Nginx, nginx_site  # noqa: F401
from .processes import (Daemon, _dirs, _live, free_port, free_ports, log_tail,  # noqa: F401
                        make_dir, remove_dir, require_tool, spawn, stop_process, wait_port)
from .proxy import TcpProxy  # noqa: F401
from .settings import (BROKER, BROKER_FEATURES, BROKER_LACKS, HOST, QUIET,  # noqa: F401
                       REPO_ROOT, SESSIONS, SHARED, TARGET, TIMEOUT, V5, V311, VERSIONS,
                       bridge_only, broker_lacks, broker_needs, broker_qos, observer_version,
                       shared_sessions, skip_unless_broker, with_sessions)
from .waits import wait_log, wait_until  # noqa: F401


def main():
    unittest.main(verbosity=2)
