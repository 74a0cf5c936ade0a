#!/bin/sh
# scripts/deps.sh [run|test] — installs the Debian packages the bridge needs that are missing.
# "run": build and run; "test": also what the test suite drives (clients, sanitizers, and
# Chromium + Node.js/npm for the browser tests).
set -eu

run_pkgs="meson ninja-build pkg-config gcc libc6-dev libwebsockets-dev libev-dev libpaho-mqtt-dev
libjansson-dev libcmocka-dev libssl-dev libsystemd-dev mosquitto mosquitto-clients python3"
test_pkgs="python3-paho-mqtt curl clang clang-format llvm libclang-rt-dev openssl chromium nodejs nginx"
# The install test: the Debian package build (debhelper, dpkg-dev, build-essential), the man page
# (man-db, groff-base) and the unit (systemd-analyze, in systemd).
test_pkgs="$test_pkgs debhelper dpkg-dev build-essential man-db groff-base systemd"
# The tests against an MQTT 3.1.1-only broker (MWB_TEST_BROKER=rabbitmq): RabbitMQ and its MQTT
# plugin. The tests start private nodes of their own (tests/integration/harness/brokers.py); the
# system-wide service the package starts and enables is stopped and disabled below.
test_pkgs="$test_pkgs rabbitmq-server"
# npm: Debian's package, unless npm is there already (NodeSource's nodejs ships its own npm and
# conflicts with Debian's).
command -v npm >/dev/null 2>&1 || test_pkgs="$test_pkgs npm"

pkgs=$run_pkgs
[ "${1:-run}" = test ] && pkgs="$run_pkgs $test_pkgs"

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "Installing missing Debian packages:$missing"
if [ "$(id -u)" -eq 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
else
	echo "error: need root (or sudo) to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing

# rabbitmq-server's postinst enables its service and starts it where an init system runs
# (systemd, or sysvinit in a known runlevel; not in a container, nor where policy-rc.d says no):
# a broker for every interface, and epmd. Nothing in the tests uses it, so when it is installed
# here it is stopped and disabled again (no-ops where it never started).
case " $missing " in
*" rabbitmq-server "*)
	if [ -d /run/systemd/system ]; then
		$sudo systemctl disable --now rabbitmq-server.service >/dev/null 2>&1 || true
		# the epmd it started (Erlang's socket activation stays as it was)
		$sudo systemctl stop epmd.service >/dev/null 2>&1 || true
	else
		$sudo invoke-rc.d rabbitmq-server stop >/dev/null 2>&1 || true
		$sudo update-rc.d rabbitmq-server disable >/dev/null 2>&1 || true
		$sudo systemctl disable rabbitmq-server.service >/dev/null 2>&1 || true
		epmd -kill >/dev/null 2>&1 || true # refused while a node is registered with it
	fi
	echo "rabbitmq-server: its service is disabled and not running (tests start their own nodes)"
	;;
esac
