#!/bin/bash
# t0420-meta-shared: metadata shared through the bucket.
#  - a second mount with its own cache directory sees labels written on
#    the first within the refresh interval (and after `refresh` at once);
#  - two mounts writing different fields of the same files at the same
#    time: both changes survive, on both mounts and for a third, fresh
#    cache; the same field written on both: all agree on one value;
#  - the changes reached the bucket as log objects (checked with the
#    server's own listing), and `dmfs meta compact` writes a checkpoint a
#    fresh cache starts from;
#  - labels set just before an unmount are in the bucket after it.
. "$(dirname "$0")/lib/common.sh"

SRC=$T_ROOT/src
mkdir -p "$SRC/d"
for i in $(seq 1 40); do t_make_file "$SRC/d/f$i.dat" 100 "f$i"; done

# list_store PREFIX: keys under PREFIX in the bucket, by the server
list_store() {
	case $T_KIND in
	file) (cd "$T_STORE_DIR" && find "$1" -type f 2>/dev/null) ;;
	*) s3_aws s3 ls --recursive "s3://$T_BUCKET/data/$1" | awk '{print $4}' ;;
	esac
}

xget() { getfattr --only-values -n "user.$2" "$1" 2>/dev/null; }

for kind in $(t_backends); do
	t_backend_start "$kind"
	# every cache starts empty on each backend (the store URI is the
	# same on every server: a kept cache would think it is in sync)
	rm -rf "$T_ROOT"/cache-?
	t_put_tree "$SRC"
	A=$T_ROOT/a B=$T_ROOT/b
	t_mount "$A" stat_ttl=1,refresh=2
	t_mount "$B" stat_ttl=1,refresh=2,cache_dir=$T_ROOT/cache-b

	# --- one writer, the other sees it within the refresh interval ---
	setfattr -n user.label -v cat "$A/live/d/f1.dat" || t_fail "setfattr on A"
	ok=0
	for i in $(seq 1 40); do
		[ "$(xget "$B/live/d/f1.dat" label)" = cat ] && { ok=1; break; }
		sleep 0.25
	done
	[ $ok = 1 ] || t_fail "B does not see A's label within 10 s"
	t_log "B saw A's label after $((i / 4)).$((i % 4 * 25)) s"

	# --- two writers at once: different fields of the same 40 files ---
	(for i in $(seq 1 40); do setfattr -n user.from_a -v "a$i" "$A/live/d/f$i.dat" || exit 1; done) &
	pa=$!
	(for i in $(seq 1 40); do setfattr -n user.from_b -v "b$i" "$B/live/d/f$i.dat" || exit 1; done) &
	pb=$!
	wait $pa || t_fail "writer A failed"
	wait $pb || t_fail "writer B failed"
	# and the same field from both: one value must win everywhere
	setfattr -n user.same -v from-a "$A/live/d/f2.dat" || t_fail "same on A"
	setfattr -n user.same -v from-b "$B/live/d/f2.dat" || t_fail "same on B"
	echo refresh >"$A/.dmfs/ctl" || t_fail "refresh A"
	echo refresh >"$B/.dmfs/ctl" || t_fail "refresh B"
	echo refresh >"$A/.dmfs/ctl" || t_fail "refresh A again"
	sleep 1.2 # attributes cached for stat_ttl=1
	for m in "$A" "$B"; do
		for i in $(seq 1 40); do
			[ "$(xget "$m/live/d/f$i.dat" from_a)" = "a$i" ] || t_fail "$m: f$i lost from_a"
			[ "$(xget "$m/live/d/f$i.dat" from_b)" = "b$i" ] || t_fail "$m: f$i lost from_b"
		done
	done
	sa=$(xget "$A/live/d/f2.dat" same) sb=$(xget "$B/live/d/f2.dat" same)
	[ "$sa" = "$sb" ] || t_fail "the mounts disagree on a field both wrote: '$sa' vs '$sb'"
	[ "$sa" = from-b ] || t_fail "the later write did not win: '$sa'"

	# --- in the bucket: log objects; a fresh cache gets the same rows ---
	n=$(list_store .dmfs/meta/log/ | grep -c '\.jsonl$')
	[ "$n" -ge 2 ] || t_fail "only $n log objects in the bucket"
	t_dmfs meta export >"$T_ROOT/a.jsonl" || t_fail "export (cache A)"
	CACHE=$T_ROOT/cache-c t_dmfs meta export >"$T_ROOT/c.jsonl" || t_fail "export (fresh cache)"
	cmp -s "$T_ROOT/a.jsonl" "$T_ROOT/c.jsonl" || t_fail "a fresh cache merges to other rows: $(diff "$T_ROOT/a.jsonl" "$T_ROOT/c.jsonl" | head -3)"
	grep -c from_a "$T_ROOT/c.jsonl" | grep -qx 40 || t_fail "fresh cache: not 40 rows with from_a"

	# --- compaction: a checkpoint, and a fresh cache starts from it ---
	t_dmfs meta compact || t_fail "dmfs meta compact"
	list_store .dmfs/meta/checkpoints/ | grep -q . || t_fail "no checkpoint object after compact"
	CACHE=$T_ROOT/cache-d t_dmfs meta export >"$T_ROOT/d.jsonl" || t_fail "export (after compact)"
	cmp -s "$T_ROOT/a.jsonl" "$T_ROOT/d.jsonl" || t_fail "after compact a fresh cache has other rows"

	# --- set just before unmount: in the bucket after it ---
	setfattr -n user.last -v word "$B/live/d/f3.dat" || t_fail "setfattr before umount"
	t_umount "$B"
	t_wait_dmfs_exit
	[ "$(CACHE=$T_ROOT/cache-e t_dmfs meta get d/f3.dat last)" = word ] ||
		t_fail "a label set just before the unmount did not reach the bucket"

	t_umount "$A"
	t_backend_stop
done
t_done
