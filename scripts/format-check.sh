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
bad=0
for f in $files; do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f (scripts/format-check.sh --fix)"
		clang-format "$f" | diff -u "$f" - | head -20
		bad=$((bad + 1))
	fi
done
echo "$(echo "$files" | wc -l) files checked, $bad not formatted"
[ "$bad" -eq 0 ]
