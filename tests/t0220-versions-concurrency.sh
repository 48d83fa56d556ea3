#!/bin/bash
# t0220-versions-concurrency: two writers of one version name, and a
# second mount seeing versions made by the first.
#  - Two `dmfs commit` of the same DATASET/VERSION started together (own
#    cache dirs, different sources so their manifests differ), 3 rounds:
#    exactly one exits 0, the other exits 3 saying "version exists"; the
#    ref in the bucket names the winner's manifest and the version reads
#    as the winner's source.  On rgw (If-None-Match: * honoured) and file
#    (atomic link) this is exact.  s3rver ignores If-None-Match, so dmfs
#    relies on its read-back: there we assert the same (not both succeed,
#    the loser exits 3, the ref is the winner's) - refs.c documents a window
#    (a writer stalled longer than the settle time between its PUT and the
#    other's read-back) that two commits started together do not hit.
#  - Mount M1 and M2 (own cache dir, -o refresh=2): a version committed
#    through M1's .dmfs/ctl shows in M1 at once and in M2 within a few
#    seconds; M3 (-o refresh=3600) shows the next one right after
#    `echo refresh > M3/.dmfs/ctl`.
. "$(dirname "$0")/lib/common.sh"
. "$T_SRC/tests/lib/versions.sh"

SRC=$T_ROOT/src
python3 "$T_SRC/tests/lib/mktree.py" "$T_ROOT/base" 300 1 || t_fail "mktree"
v_s3rver_tree "$T_ROOT/base" "$SRC" # the same tree for all three servers
ROUNDS=${DMFS_TEST_ROUNDS:-3}

for kind in $(t_backends); do
	t_backend_start "$kind"
	t_put_tree "$SRC"
	for r in $(seq "$ROUNDS"); do
		# The same name from two writers with their own caches.
		rm -rf "$T_ROOT/cacheA" "$T_ROOT/cacheB"
		# Both wait for one signal, so they start within milliseconds.
		rm -f "$T_ROOT/go"
		(
			while [ ! -e "$T_ROOT/go" ]; do sleep 0.01; done
			CACHE=$T_ROOT/cacheA t_dmfs commit race "v$r" --from live/dir01 -m A
		) >"$T_ROOT/A.out" 2>"$T_ROOT/A.err" &
		pa=$!
		(
			while [ ! -e "$T_ROOT/go" ]; do sleep 0.01; done
			CACHE=$T_ROOT/cacheB t_dmfs commit race "v$r" --from live/dir02 -m B
		) >"$T_ROOT/B.out" 2>"$T_ROOT/B.err" &
		pb=$!
		sleep 0.3
		touch "$T_ROOT/go"
		wait "$pa"
		ra=$?
		wait "$pb"
		rb=$?
		what="round $r: A exited $ra ($(cat "$T_ROOT/A.err")), B exited $rb ($(cat "$T_ROOT/B.err"))"
		if [ "$ra" = 0 ] && [ "$rb" = 3 ]; then
			win=A wdir=dir01 lose=B
		elif [ "$ra" = 3 ] && [ "$rb" = 0 ]; then
			win=B wdir=dir02 lose=A
		else
			t_fail "want one commit to exit 0 and the other 3; $what"
		fi
		grep -q "version exists" "$T_ROOT/$lose.err" ||
			t_fail "the losing commit does not say 'version exists': $what"
		got=$(v_ref_manifest "datasets/race/v$r")
		grep -q "manifest $got" "$T_ROOT/$win.out" ||
			t_fail "round $r: the ref names manifest $got, not the winner's: $(cat "$T_ROOT/$win.out")"
		t_log "round $r: $win won; $lose: $(grep -o 'version exists.*' "$T_ROOT/$lose.err" | head -1)"
		mkdir -p "$T_ROOT/want"
		rm -rf "$T_ROOT/want/v$r"
		cp -a "$SRC/$wdir" "$T_ROOT/want/v$r"
	done
	t_dmfs log race >"$T_ROOT/log.out" 2>"$T_ROOT/err" || t_fail "dmfs log: $(cat "$T_ROOT/err")"
	for r in $(seq "$ROUNDS"); do
		[ "$(grep -cE "(^|[^A-Za-z0-9_.-])v$r([^A-Za-z0-9_.-]|\$)" "$T_ROOT/log.out")" -ge 1 ] ||
			t_fail "dmfs log race does not show v$r: $(cat "$T_ROOT/log.out")"
	done

	# --- a second mount sees versions made through the first ---
	M1=$T_ROOT/m1 M2=$T_ROOT/m2 M3=$T_ROOT/m3
	t_mount "$M1"
	t_mount "$M2" "cache_dir=$T_ROOT/cache2" refresh=2
	t_mount "$M3" "cache_dir=$T_ROOT/cache3" refresh=3600
	for r in $(seq "$ROUNDS"); do
		diff -r "$T_ROOT/want/v$r" "$M2/datasets/race/v$r" >"$T_ROOT/diff.out" 2>&1 ||
			t_fail "datasets/race/v$r is not the winner's tree: $(head -5 "$T_ROOT/diff.out")"
	done
	ls "$M2/datasets" >/dev/null
	ls "$M3/datasets" >/dev/null
	[ ! -e "$M2/datasets/ds" ] || t_fail "datasets/ds exists before it was made"

	echo "commit ds v9 live -m hi" >"$M1/.dmfs/ctl" ||
		t_fail "commit through .dmfs/ctl failed: $(cat "$M1/.dmfs/last-error" 2>&1)"
	v_wait_for 30 v_exists .dmfs/refs/datasets/ds/v9 >/dev/null || t_fail "ds/v9 never reached the bucket"
	[ -d "$M1/datasets/ds/v9" ] || t_fail "M1 does not show the version it just made"
	[ "$(readlink "$M1/datasets/ds/latest")" = v9 ] || t_fail "M1: datasets/ds/latest -> $(readlink "$M1/datasets/ds/latest")"
	v_get .dmfs/refs/datasets/ds/v9 "$T_ROOT/ref.json"
	python3 -c 'import json,sys; h = json.load(open(sys.argv[1]))["header"]; assert h.get("message") == "hi", h' \
		"$T_ROOT/ref.json" || t_fail "-m hi did not reach the header: $(cat "$T_ROOT/ref.json")"
	t=$(v_wait_for 8 test -d "$M2/datasets/ds/v9") ||
		t_fail "M2 (refresh=2) does not show datasets/ds/v9 after 8 s"
	t_log "M2 (refresh=2) saw ds/v9 after ${t}s"
	diff -r "$SRC" "$M2/datasets/ds/v9" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "M2 datasets/ds/v9: $(head -5 "$T_ROOT/diff.out")"

	echo "commit ds v10 live -m again" >"$M1/.dmfs/ctl" ||
		t_fail "second commit through .dmfs/ctl failed: $(cat "$M1/.dmfs/last-error" 2>&1)"
	v_wait_for 30 v_exists .dmfs/refs/datasets/ds/v10 >/dev/null || t_fail "ds/v10 never reached the bucket"
	# A user on M3 looks, finds nothing (M3 refreshes hourly), refreshes
	# and looks again: the answer must not be a stale "no such file".
	if [ -e "$M3/datasets/ds/v10" ]; then t_log "M3 saw ds/v10 before the refresh"; fi
	echo refresh >"$M3/.dmfs/ctl" || t_fail "refresh through .dmfs/ctl failed"
	[ -d "$M3/datasets/ds/v10" ] ||
		t_fail "M3 does not show datasets/ds/v10 right after refresh (the lookup that failed just before the refresh is still cached)"
	[ "$(readlink "$M3/datasets/ds/latest")" = v10 ] ||
		t_fail "M3 after refresh: datasets/ds/latest -> $(readlink "$M3/datasets/ds/latest")"
	ls "$M3/datasets/ds" | grep -qx v10 || t_fail "M3 readdir after refresh: $(ls "$M3/datasets/ds")"
	echo refresh >"$M2/.dmfs/ctl" || t_fail "refresh through M2's .dmfs/ctl failed"
	[ -d "$M2/datasets/ds/v10" ] || t_fail "M2 does not show datasets/ds/v10 right after refresh"

	# The same name again through ctl: the write fails, the reason is kept.
	T_ALLOW_ERRORS=1
	if echo "commit ds v9 live" >"$M1/.dmfs/ctl" 2>/dev/null; then
		t_fail "committing an existing version through .dmfs/ctl succeeded"
	fi
	grep -q "exists" "$M1/.dmfs/last-error" || t_fail ".dmfs/last-error: $(cat "$M1/.dmfs/last-error")"
	t_umount "$M1"
	t_umount "$M2"
	t_umount "$M3"
	t_log_reset
	T_ALLOW_ERRORS=0
	t_backend_stop
done
t_done
