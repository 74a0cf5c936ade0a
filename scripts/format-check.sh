#!/bin/sh
# scripts/format-check.sh [--fix] — every C file of the project as .clang-format has it. Run by the
# test command (meson test "format"); fails listing each file clang-format would change and how.
# --fix rewrites them instead. The reference is Debian's clang-format (14 on bookworm): another
# major version may format a few constructs differently.
set -u
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null 2>&1 || {
	echo "error: clang-format is missing (scripts/deps.sh test installs it)" >&2
	exit 1
}
files=$(find bridge web tests/unit tests/fuzz bench -name '*.[ch]' | sort)
if [ "${1:-}" = --fix ]; then
	# shellcheck disable=SC2086
	exec clang-format -i $files
fi
# One clang-format for every file (one per file takes half a minute on a busy machine); the files
# it names get their diff shown.
# shellcheck disable=SC2086
if clang-format --dry-run --Werror $files >/dev/null 2>&1; then
	echo "$(echo "$files" | wc -l) files checked, 0 not formatted"
	exit 0
fi
bad=0
# shellcheck disable=SC2086
for f in $(clang-format --dry-run $files 2>&1 | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: .*clang-format.*/\1/p' | sort -u); do
	echo "not formatted: $f (scripts/format-check.sh --fix)"
	clang-format "$f" | diff -u "$f" - | head -20
	bad=$((bad + 1))
done
echo "$(echo "$files" | wc -l) files checked, $bad not formatted"
exit 1
