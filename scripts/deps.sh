#!/bin/sh
# scripts/deps.sh [run|test] — installs the Debian packages the bridge needs that are missing.
# "run": build and run; "test": also what the test suite drives (clients, sanitizers, and
# Chromium + Node.js/npm for the browser tests).
set -eu

run_pkgs="meson ninja-build pkg-config gcc libc6-dev libwebsockets-dev libev-dev libpaho-mqtt-dev
libjansson-dev libcmocka-dev libssl-dev libsystemd-dev mosquitto mosquitto-clients python3"
test_pkgs="python3-paho-mqtt curl clang llvm libclang-rt-dev openssl chromium nodejs nginx"
# The install test: the Debian package build (debhelper, dpkg-dev, build-essential), the man page
# (man-db, groff-base) and the unit (systemd-analyze, in systemd).
test_pkgs="$test_pkgs debhelper dpkg-dev build-essential man-db groff-base systemd"
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
