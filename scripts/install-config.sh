#!/bin/sh
# scripts/install-config.sh SAMPLE DIR — a `meson install` step (config/meson.build): puts the
# sample configuration into DIR (sysconfdir/mqtt-web-bridge) unless a configuration is there
# already, so that installing again never overwrites what the operator edited.
set -eu
sample=$1
dir="${DESTDIR:-}$2"
dest="$dir/mqtt-web-bridge.json"

if [ -e "$dest" ]; then
	echo "Keeping $dest (it exists)"
	exit 0
fi
mkdir -p "$dir"
install -m 0644 "$sample" "$dest"
echo "Installing $sample to $dir"
