#!/bin/bash
# t0320-live-appenders: ten writers appending to ten files in parallel
# through one mount.  Each writer appends 200 lines of a known pattern with
# `>>` in a loop (open, append, close: one upload per line), some with
# small sleeps between appends so the writers interleave differently.
# Then every object is compared with the expected content using an
# independent client (awscli; the store directory for file://), and the
# files are re-read through a fresh mount with an empty cache.
# T0320_BREAK=1 corrupts the expectation on purpose: the test must fail.
. "$(dirname "$0")/lib/common.sh"

NW=10 NL=200
WANT=$T_ROOT/want
mkdir -p "$WANT"
# line W J: the pattern writer W appends as its line J (varied lengths,
# so a lost or reordered append changes size and content).
line() { printf 'writer %02d line %03d %s\n' "$1" "$2" "$(printf '%*s' $((($1 * 7 + $2 * 13) % 61)) '' | tr ' ' "$((($1 + $2) % 10))")"; }
for w in $(seq 0 $((NW - 1))); do
	for j in $(seq 1 $NL); do line "$w" "$j"; done >"$WANT/f$w.txt"
done
if [ "${T0320_BREAK:-0}" = 1 ]; then
	sed -i '100s/line 100/line 1OO/' "$WANT/f3.txt"
fi

# compare DIR WHAT: DIR holds exactly the expected files, byte for byte.
compare() {
	local f
	for f in "$WANT"/*; do
		cmp "$f" "$1/$(basename "$f")" >&2 ||
			t_fail "$2: $(basename "$f") differs ($(wc -l <"$1/$(basename "$f")" 2>/dev/null || echo no) lines)"
	done
	[ "$(t_tree_sums "$1")" = "$(t_tree_sums "$WANT")" ] || t_fail "$2: file set differs: $(ls "$1" | tr '\n' ' ')"
}

for kind in $(t_backends); do
	# s3rver answers a PUT with 200 before the bytes are readable (an
	# empty object for a moment): dmfs's check after the upload asks
	# again before it calls the upload failed, so s3rver runs too.
	t_backend_start "$kind"
	M=$T_ROOT/mnt
	t_mount "$M" stat_ttl=30
	L=$M/live
	mkdir "$L/app" || t_fail "mkdir app"

	pids=()
	for w in $(seq 0 $((NW - 1))); do
		(
			for j in $(seq 1 $NL); do
				line "$w" "$j" >>"$L/app/f$w.txt" || { echo "writer $w: append $j failed" >&2; exit 1; }
				# Writers 1, 4, 7 pause now and then, so the others overtake them.
				case $w in 1 | 4 | 7) [ $((j % 10)) = 0 ] && sleep 0.0$((w + 1)) ;; esac
			done
			exit 0
		) &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || t_fail "a writer failed"; done

	# Read-after-write through the same mount.
	compare "$L/app" "through the writing mount"
	[ "$(t_status "$M" uploads.pending)" = 0 ] || t_fail "uploads pending after the writers closed"
	[ "$(t_status "$M" uploads.failed)" = 0 ] || t_fail "uploads failed"

	# Independent client.
	t_store_copy app/ "$T_ROOT/got"
	compare "$T_ROOT/got" "in the bucket"

	# A fresh mount with an empty cache.
	t_umount "$M"
	rm -rf "$T_ROOT/cache"
	t_mount "$M" stat_ttl=30
	compare "$M/live/app" "through a fresh mount"
	t_umount "$M"
	t_backend_stop
done
t_done
