#!/bin/sh
# scripts/vendor.sh — refreshes the browser libraries in static/vendor/ from npm at pinned versions.
# MQTT.js (browser ES build) and uPlot (ES build + CSS), each with its licence and a VERSION file.
# Idempotent; the only network access is `npm pack` against the npm registry.
set -eu

MQTT_VERSION=5.16.0
UPLOT_VERSION=1.6.32

root=$(cd "$(dirname "$0")/.." && pwd)
vendor="$root/static/vendor"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

command -v npm >/dev/null 2>&1 || { echo "error: npm is needed (apt-get install npm)" >&2; exit 1; }

cd "$tmp"
npm pack --silent "mqtt@$MQTT_VERSION" "uplot@$UPLOT_VERSION" >/dev/null
mkdir mqtt uplot
tar -xzf "mqtt-$MQTT_VERSION.tgz" -C mqtt
tar -xzf "uplot-$UPLOT_VERSION.tgz" -C uplot

# install SRC DEST: copy only when the content differs, so a refresh at the same version changes nothing.
install_file() {
	if ! cmp -s "$1" "$2" 2>/dev/null; then
		cp "$1" "$2"
		echo "updated ${2#"$root"/}"
	fi
}
write_version() {
	printf '%s\n' "$1" >"$tmp/VERSION"
	install_file "$tmp/VERSION" "$2/VERSION"
}

mkdir -p "$vendor/mqtt" "$vendor/uplot"
install_file mqtt/package/dist/mqtt.esm.js "$vendor/mqtt/mqtt.esm.js"
install_file mqtt/package/LICENSE.md "$vendor/mqtt/LICENSE"
write_version "mqtt $MQTT_VERSION" "$vendor/mqtt"

install_file uplot/package/dist/uPlot.esm.js "$vendor/uplot/uPlot.esm.js"
install_file uplot/package/dist/uPlot.min.css "$vendor/uplot/uPlot.min.css"
install_file uplot/package/LICENSE "$vendor/uplot/LICENSE"
write_version "uplot $UPLOT_VERSION" "$vendor/uplot"
