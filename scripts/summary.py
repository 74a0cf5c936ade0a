#!/usr/bin/env python3
"""scripts/summary.py BUILD_DIR... — one line "N passed, M failed" from meson's test logs.

A skipped test counts as failed (no test may skip silently), and so does a build whose log is
missing (nothing ran there). Exits 1 unless something passed and nothing failed."""
import json
import os
import sys

passed = failed = 0
for build in sys.argv[1:]:
    path = os.path.join(build, "meson-logs", "testlog.json")
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                result = json.loads(line).get("result")
                if result in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                else:
                    failed += 1
    except OSError:
        print(f"{build}: no test log (the build or the test run did not happen)", file=sys.stderr)
        failed += 1
print(f"{passed} passed, {failed} failed")
sys.exit(0 if passed and not failed else 1)
