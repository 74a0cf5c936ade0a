"""What this run is: the target (MWB_TARGET), the session mode (MWB_SESSIONS), the broker
(MWB_TEST_BROKER) and what it lacks, MQTT versions, and the bounds every wait uses."""

import os
import unittest

import paho.mqtt.client as mqtt

HOST = "127.0.0.1"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

TARGET = os.environ.get("MWB_TARGET", "bridge")
if TARGET not in ("bridge", "mosquitto"):
    raise SystemExit("MWB_TARGET must be 'bridge' or 'mosquitto', not %r" % TARGET)

SESSIONS = os.environ.get("MWB_SESSIONS", "auto")
if SESSIONS not in ("auto", "dedicated"):
    raise SystemExit("MWB_SESSIONS must be 'auto' or 'dedicated', not %r" % SESSIONS)

# True when the endpoint under test serves a session that allows it (clean, no will, vouched-for
# identity) from the hub: no broker client per browser. False for Mosquitto and for dedicated.
SHARED = TARGET == "bridge" and SESSIONS == "auto"

BROKER = os.environ.get("MWB_TEST_BROKER", "mosquitto")
if BROKER not in ("mosquitto", "rabbitmq"):
    raise SystemExit("MWB_TEST_BROKER must be 'mosquitto' or 'rabbitmq', not %r" % BROKER)
if TARGET == "mosquitto" and BROKER != "mosquitto":
    raise SystemExit("MWB_TARGET=mosquitto tests Mosquitto's own WebSocket listener: it needs "
                     "MWB_TEST_BROKER=mosquitto")

# What a test may need from the broker, and what each broker lacks of it (with the reason the
# skip message gives). Facts about RabbitMQ 3.10.8 (Debian 12), observed with the node started
# here; see README.md, "RabbitMQ 3.10.8 facts".
BROKER_FEATURES = {
    "mosquitto": "Mosquitto itself: its log, $SYS topics, acl_file, password_file, plugins, "
                 "WebSocket listener",
    "mqtt5": "MQTT 5 between the bridge and the broker and for observers: properties, "
             "reason codes, session expiry, retain as published",
    "mixed_qos_order": "a publisher's QoS 0 and QoS 1 messages delivered in the order they were "
                       "published (MQTT 3.1.1 and 5 §4.6 ask it only per topic and QoS)",
    "qos2": "QoS 2 at the broker: granted and delivered at QoS 2, PUBREC/PUBREL/PUBCOMP flows",
    "retained_wildcards": "retained messages for a wildcard subscription",
    "shared_subscriptions": "$share/GROUP/FILTER subscriptions at the broker",
    "topic_dots": "a '.' in a topic name arrives as it was published",
}
BROKER_LACKS = {
    "mosquitto": {},
    "rabbitmq": {
        "mosquitto": "RabbitMQ is not Mosquitto",
        "mqtt5": "RabbitMQ 3.10 speaks MQTT 3.1.1 only (an MQTT 5 CONNECT is closed without a "
                 "CONNACK)",
        "mixed_qos_order": "RabbitMQ 3.10 can deliver a publisher's QoS 1 message before its "
                           "earlier QoS 0 one, on the same topic or another (test_sse, under load)",
        "qos2": "RabbitMQ 3.10 grants QoS 1 for QoS 2 and handles a QoS 2 PUBLISH as QoS 1 "
                "(PUBACK, no PUBREC)",
        "retained_wildcards": "RabbitMQ 3.10 sends a retained message only to a subscription "
                              "to its exact topic",
        "shared_subscriptions": "RabbitMQ 3.10 takes $share/G/F as a plain topic filter",
        "topic_dots": "RabbitMQ 3.10 maps MQTT '/' to AMQP '.' and back: 'a.b' arrives as 'a/b'",
    },
}


def broker_lacks(feature):
    """Why the broker of this run (MWB_TEST_BROKER) lacks @feature (a key of BROKER_FEATURES),
    or None when it has it."""
    if feature not in BROKER_FEATURES:
        raise AssertionError("unknown broker feature %r (BROKER_FEATURES)" % feature)
    return BROKER_LACKS[BROKER].get(feature)


def _needs_message(feature, reason):
    return "needs %s (%s); MWB_TEST_BROKER=%s: %s" % (feature, reason, BROKER,
                                                      broker_lacks(feature))


def broker_needs(feature, reason):
    """A test or class that needs @feature of the broker (BROKER_FEATURES), for @reason: skipped
    ONLY when the broker of this run lacks it, with both reasons in the skip message."""
    return unittest.skipIf(broker_lacks(feature) is not None, _needs_message(feature, reason))


def skip_unless_broker(case, feature, reason):
    """The same inside a test, for one subTest (e.g. the QoS 2 round of a loop over QoS)."""
    if broker_lacks(feature) is not None:
        case.skipTest(_needs_message(feature, reason))


def broker_qos(qos):
    """The QoS the broker of this run grants for a subscription at @qos, and so the QoS of what an
    observer subscribed at @qos receives of a message published at QoS >= @qos."""
    return min(qos, 1) if broker_lacks("qos2") else qos


def with_sessions(config):
    """A copy of the bridge config @config (a dict, or None) with "mqtt_sessions" from
    MWB_SESSIONS, unless @config sets it. Tests that write a bridge's config file themselves (for
    a SIGHUP) write this."""
    out = dict(config or {})
    out.setdefault("mqtt_sessions", SESSIONS)
    return out


def shared_sessions(config):
    """Whether a bridge started with @config serves shareable sessions from its hub."""
    return TARGET == "bridge" and with_sessions(config)["mqtt_sessions"] == "auto"


V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5
VERSIONS = (V311, V5)


def observer_version(version):
    """The MQTT version an observer (a TCP client on the broker) speaks when a test asks for
    @version: V5 becomes V311 on a broker without MQTT 5 (RabbitMQ). A test that asserts what
    only V5 carries (properties, reason codes) says @broker_needs("mqtt5", ...)."""
    return V311 if version == V5 and broker_lacks("mqtt5") else version


TIMEOUT = 5.0          # default bound for anything that should happen "now"
QUIET = 0.7            # how long "nothing arrives" is watched


def bridge_only(reason):
    """Skip only when the target is Mosquitto's own listener, never against the bridge."""
    return unittest.skipIf(TARGET == "mosquitto", "bridge only (%s)" % reason)
