#!/bin/sh
# scripts/run.sh [BRIDGE OPTIONS] — the quick start: installs what is missing, builds, starts a
# private Mosquitto unless a broker is given (--broker URL, or MWB_BROKER=URL), then runs the
# bridge in the foreground and prints the URL to open. Ctrl-C stops both.
set -eu
cd "$(dirname "$0")/.."

scripts/deps.sh run
[ -d build ] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build >/dev/null

broker="${MWB_BROKER:-}"
for a in "$@"; do
	case "$a" in -b | --broker | --broker=*) broker="given" ;; esac
done

mosquitto_pid=""
bridge_pid=""
cleanup() {
	for pid in $bridge_pid $mosquitto_pid; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $bridge_pid $mosquitto_pid; do
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$broker" ]; then
	port=$(scripts/free-port.sh)
	mkdir -p .run
	cat > .run/mosquitto.conf <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
CONF
	/usr/sbin/mosquitto -c .run/mosquitto.conf 2>.run/mosquitto.log &
	mosquitto_pid=$!
	scripts/wait-port.sh 127.0.0.1 "$port" 10
	echo "Started a private Mosquitto on 127.0.0.1:$port (log: .run/mosquitto.log)"
	set -- --broker "mqtt://127.0.0.1:$port" "$@"
elif [ "$broker" != given ]; then
	set -- --broker "$broker" "$@"
fi

build/mqtt-web-bridge "$@" &
bridge_pid=$!
# --check prints the effective settings as key=value lines, among them listen=HOST:PORT.
listen=$(build/mqtt-web-bridge "$@" --check | sed -n 's/^listen=//p')
host=${listen%:*}
port=${listen##*:}
case "$host" in 0.0.0.0 | "[::]" | "") url_host=127.0.0.1 ;; *) url_host=$host ;; esac
if scripts/wait-port.sh "$host" "$port" 10; then
	echo
	echo "  mqtt-web-bridge is running: open http://$url_host:$port/"
	echo "  MQTT over WebSocket: ws://$url_host:$port/mqtt   (Ctrl-C stops it)"
	echo
fi
wait "$bridge_pid"
