#!/bin/sh
# scripts/fuzz.sh — fuzzes the pure modules with libFuzzer (clang, AddressSanitizer, UBSan).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 60); TARGETs among codec, url, json, config (default all, one
# after another; JOBS=2 runs two at a time). It configures build-fuzz/ with CC=clang and -Dfuzzing=true, builds the
# fuzz_<target> binaries, and runs each on its seeds (tests/fuzz/corpus/<target>/, only read)
# plus what earlier runs found interesting (build-fuzz/corpus/<target>/, kept between runs),
# with the dictionary tests/fuzz/<target>.dict.
# A crash, leak, sanitizer report or broken invariant is written to tests/fuzz/findings/<target>/
# (crash-*, leak-*, timeout-*, oom-*; git ignores it). Then: shrink it with
#   build-fuzz/tests/fuzz_<target> -minimize_crash=1 -runs=100000 FILE
# fix the bug, and copy the (minimized) input into tests/fuzz/corpus/<target>/ with a name that
# says what it found: `meson test --suite fuzz` replays it from then on.
# Ends with one line per target: runs, exec/s, coverage, findings; exit 1 if anything was found.
# One run at a time per checkout: runs share build-fuzz/.
set -u
cd "$(dirname "$0")/.."

seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-codec url json config}
case $seconds in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS] [TARGET...]" >&2
	exit 2
	;;
esac

scripts/deps.sh test || exit 1

dir=build-fuzz
if [ ! -d "$dir" ]; then
	CC=clang meson setup "$dir" -Dfuzzing=true -Dbuildtype=debugoptimized || exit 1
else
	meson setup --reconfigure "$dir" -Dfuzzing=true >/dev/null || exit 1
fi
for t in $targets; do
	ninja -C "$dir" "tests/fuzz_$t" || exit 1
done

# Leaks count as findings; a sanitizer report stops the run with the input saved.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# One target: runs it, then writes its summary line to $dir/fuzz-$t.summary.
fuzz_one() {
	t=$1
	work="$dir/corpus/$t"
	findings="tests/fuzz/findings/$t"
	log="$dir/fuzz-$t.log"
	mkdir -p "$work" "$findings"
	before=$(ls "$findings" | wc -l)
	dict=""
	[ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
	echo "== fuzz_$t for ${seconds}s (log: $log)"
	# shellcheck disable=SC2086 # $dict is one word or none
	"$dir/tests/fuzz_$t" $dict -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-max_len=8192 -print_final_stats=1 -artifact_prefix="$findings/" \
		"$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	after=$(ls "$findings" | wc -l)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	line="$t: ${runs:-?} runs, ${speed:-?} exec/s, ${cov:-cov: ?}, $((after - before)) new finding(s)"
	if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
		line="$line (exit $rc; see $log and $findings/)"
	fi
	echo "$line" >"$dir/fuzz-$t.summary"
}

# JOBS targets at a time (default 1): each libFuzzer process uses one core.
jobs=${JOBS:-1}
running=0
for t in $targets; do
	rm -f "$dir/fuzz-$t.summary"
	fuzz_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait
		running=0
	fi
done
wait

status=0
echo
for t in $targets; do
	if [ -f "$dir/fuzz-$t.summary" ]; then
		cat "$dir/fuzz-$t.summary"
		grep -q '(exit' "$dir/fuzz-$t.summary" && status=1
	else
		echo "$t: did not run"
		status=1
	fi
done
exit $status
