#!/bin/sh
# scripts/wait-port.sh HOST PORT SECONDS — waits until HOST:PORT accepts TCP connections.
exec /usr/bin/python3 - "$@" <<'PY'
import socket, sys, time
host, port, limit = sys.argv[1].strip("[]"), int(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        socket.create_connection((host, port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
print(f"error: nothing listens on {host}:{port} after {limit:g}s", file=sys.stderr)
sys.exit(1)
PY
