# Shell helpers of the ufoctl tests (sourced): they need $UFOCTL and $TMP.

# fail MESSAGE: says what failed, shows the last ufoctl output and every
# server log in $TMP, and exits 1.
fail() {
	echo "FAIL: $*" >&2
	for f in out err; do
		if [ -s "$TMP/$f" ]; then
			echo "--- last ufoctl std$f:" >&2
			cat "$TMP/$f" >&2
		fi
	done
	for f in "$TMP"/server*.log*; do
		[ -e "$f" ] || continue
		echo "--- $(basename "$f"):" >&2
		cat "$f" >&2
	done
	exit 1
}

# run WANT_STATUS ARGS...: runs ufoctl ARGS, output in $TMP/out and
# $TMP/err, and checks its exit status.
run() {
	want=$1
	shift
	"$UFOCTL" "$@" >"$TMP/out" 2>"$TMP/err"
	got=$?
	[ "$got" -eq "$want" ] ||
		fail "ufoctl $* exited $got, expected $want"
}

# expect FILE PATTERN: the last output file contains PATTERN (grep -E).
expect() {
	grep -Eq -- "$2" "$TMP/$1" || fail "std$1 lacks /$2/"
}
