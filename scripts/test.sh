#!/bin/sh
# scripts/test.sh — the test command: installs what is missing, builds, and runs every test
# (unit, integration) twice: in a normal build with warnings as errors, and in an
# AddressSanitizer + UndefinedBehaviorSanitizer build. Ends with one line "N passed, M failed".
set -u
cd "$(dirname "$0")/.."

scripts/deps.sh test || exit 1

# The browser tests' driver (playwright-core, pinned in tests/browser/package-lock.json): installed
# when missing or older than the lock file.
if [ ! -f tests/browser/node_modules/.package-lock.json ] ||
	[ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
	npm ci --prefix tests/browser --no-audit --no-fund || {
		echo "error: npm ci --prefix tests/browser failed" >&2
		exit 1
	}
fi

# Sanitizer findings must fail the run: the bridge exits non-zero and the test sees it.
export ASAN_OPTIONS="abort_on_error=0:detect_leaks=1:exitcode=66"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=67"
export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"

# Four tests at a time on two cores: they spend most of their time waiting (for brokers to boot,
# keepalives and timeouts to pass), and four at a time take two thirds of the time two do.
jobs=${MWB_TEST_JOBS:-4}
status=0
run_suite() { # build-dir, "meson test" options, meson setup options...
	dir=$1
	test_opts=$2
	shift 2
	if [ ! -d "$dir" ]; then
		meson setup "$dir" "$@" || return 1
	else
		meson setup --reconfigure "$dir" "$@" >/dev/null || return 1
	fi
	ninja -C "$dir" || return 1
	rm -f "$dir/meson-logs/testlog.json"
	# shellcheck disable=SC2086
	meson test -C "$dir" --print-errorlogs --num-processes "$jobs" $test_opts || return 1
}

# The dashboard's load measurement (suite "load", tests/meson.build) is left out: run it alone.
run_suite build-test "--no-suite load" -Dwerror=true -Dbuildtype=debugoptimized || status=1
# The sanitizer build leaves out the RabbitMQ runs (about two minutes): the bridge's 3.1.x code
# paths run there all the same, pinned to 3.1.1 and 3.1 in front of Mosquitto
# (integration.broker_versions). It leaves out the dashboard's panel tests too (suite
# "dashboard", tests/meson.build): they test the page. And the formatter check and the install
# test (it builds a tree of its own): once is enough.
run_suite build-asan "--no-suite rabbitmq --no-suite dashboard --no-suite load --no-suite format --no-suite install" -Dwerror=true -Dbuildtype=debug \
	-Db_sanitize=address,undefined -Db_lundef=false || status=1

/usr/bin/python3 scripts/summary.py build-test build-asan || status=1
exit $status
