#!/bin/bash
# t0230-versions-zero-copy: on a bucket with versioning enabled (rgw), a
# snapshot pins object versions instead of copying content:
#  - `dmfs snapshot` says zero-copy (its output, the ref header, dmfs log)
#    and stores no content object;
#  - the snapshot reads the old bytes after the live object is overwritten,
#    and still after it is deleted (a delete marker), from a fresh cache;
#  - fsck passes (the pinned versions are readable); a dataset version
#    made from the snapshot copies the pinned bytes into the content store;
#  - --copy still copies; on a file:// store --zero-copy is refused.
. "$(dirname "$0")/lib/common.sh"
. "$T_SRC/tests/lib/versions.sh"

SRC=$T_ROOT/src
python3 "$T_SRC/tests/lib/mktree.py" "$SRC" 40 3 || t_fail "mktree"
find "$SRC" -type d -empty -delete # a bucket has no empty directories
mapfile -t F < <(cd "$SRC" && find dir0* -name 'f*.dat' -size +1k | LC_ALL=C sort | head -3)
[ "${#F[@]}" = 3 ] || t_fail "test setup: want 3 files"
t_make_file "$T_ROOT/new1" 12345 new1
t_make_file "$T_ROOT/new2" 54321 new2

kinds=
for k in $(t_backends); do
	case $k in rgw | file) kinds+=" $k" ;; esac
done

for kind in $kinds; do
	t_backend_start "$kind"
	if [ "$kind" = file ]; then
		t_put_tree "$SRC"
		if t_dmfs snapshot --id z --zero-copy >"$T_ROOT/out" 2>"$T_ROOT/err"; then
			t_fail "--zero-copy on a file store succeeded: $(cat "$T_ROOT/out")"
		fi
		grep -qi "versioning" "$T_ROOT/err" || t_fail "--zero-copy refusal: $(cat "$T_ROOT/err")"
		v_exists .dmfs/refs/snapshots/z && t_fail "a refused snapshot left a ref"
		t_backend_stop
		continue
	fi
	s3_aws s3api put-bucket-versioning --bucket "$T_BUCKET" \
		--versioning-configuration Status=Enabled || t_fail "enable versioning"
	t_put_tree "$SRC"
	M=$T_ROOT/mnt

	t_dmfs snapshot --id z1 -m pinned >"$T_ROOT/out" 2>"$T_ROOT/err" ||
		t_fail "snapshot on a versioned bucket failed: $(cat "$T_ROOT/err")"
	grep -q "zero-copy" "$T_ROOT/out" || t_fail "snapshot output does not say zero-copy: $(cat "$T_ROOT/out")"
	[ "$(v_count .dmfs/objects/)" = "0 0" ] ||
		t_fail "a zero-copy snapshot stored content: $(v_keys .dmfs/objects/ | head)"
	v_get .dmfs/refs/snapshots/z1 "$T_ROOT/ref.json" || t_fail "no ref for z1"
	python3 -c 'import json,sys; h = json.load(open(sys.argv[1]))["header"]; assert h.get("mode") == "zero-copy", h' \
		"$T_ROOT/ref.json" || t_fail "ref header: $(cat "$T_ROOT/ref.json")"
	# Every entry pins a key and a version id, none names content.
	v_get ".dmfs/manifests/sha256/$(v_ref_manifest snapshots/z1)" "$T_ROOT/m" || t_fail "get manifest"
	python3 - "$T_ROOT/m" <<'PY' || t_fail "zero-copy manifest: $(head -3 "$T_ROOT/m")"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
for l in lines[1:]:
    e = json.loads(l)
    assert e.get("key") and e.get("version_id") and "sha256" not in e, e
PY
	t_dmfs log >"$T_ROOT/log.out" 2>&1 || t_fail "dmfs log: $(cat "$T_ROOT/log.out")"
	grep -q "zero-copy" "$T_ROOT/log.out" || t_fail "dmfs log does not say zero-copy: $(cat "$T_ROOT/log.out")"
	t_dmfs fsck >"$T_ROOT/fsck.out" 2>&1 || t_fail "fsck of a zero-copy snapshot: $(cat "$T_ROOT/fsck.out")"

	t_mount "$M"
	diff -r "$SRC" "$M/snapshots/z1" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "snapshots/z1: $(head -5 "$T_ROOT/diff.out")"
	t_umount "$M"

	# Overwrite: the snapshot keeps the old bytes, live has the new.
	t_put_file "$T_ROOT/new1" "${F[0]}"
	t_put_file "$T_ROOT/new2" "${F[1]}"
	rm -rf "$T_ROOT/cache"
	t_mount "$M"
	diff -r "$SRC" "$M/snapshots/z1" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "snapshots/z1 after overwrites: $(head -5 "$T_ROOT/diff.out")"
	cmp "$M/live/${F[0]}" "$T_ROOT/new1" || t_fail "live ${F[0]} is not the new content"
	t_umount "$M"

	# Delete (the key gets a delete marker): still readable in z1.
	v_rm "${F[0]}"
	v_rm "${F[2]}"
	rm -rf "$T_ROOT/cache"
	t_mount "$M"
	diff -r "$SRC" "$M/snapshots/z1" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "snapshots/z1 after deletes: $(head -5 "$T_ROOT/diff.out")"
	[ ! -e "$M/live/${F[0]}" ] || t_fail "live ${F[0]} still there after delete"
	t_umount "$M"
	t_dmfs fsck >"$T_ROOT/fsck.out" 2>&1 || t_fail "fsck after overwrite+delete: $(cat "$T_ROOT/fsck.out")"
	t_log "zero-copy snapshot reads the old bytes after overwrite and delete"

	# A version made from the snapshot copies the pinned bytes.
	t_dmfs commit ds v1 --from snapshots/z1 >"$T_ROOT/out" 2>"$T_ROOT/err" ||
		t_fail "commit from a zero-copy snapshot: $(cat "$T_ROOT/err")"
	want=$(v_tree_objects "$SRC")
	[ "$(v_count .dmfs/objects/)" = "$want" ] ||
		t_fail "version from z1 stored '$(v_count .dmfs/objects/)' (count bytes), want '$want'"
	# --copy on a versioned bucket copies (only what is not stored yet).
	t_dmfs snapshot --id c1 --copy >"$T_ROOT/out" 2>"$T_ROOT/err" ||
		t_fail "snapshot --copy: $(cat "$T_ROOT/err")"
	grep -q "(copy)" "$T_ROOT/out" || t_fail "snapshot --copy output: $(cat "$T_ROOT/out")"
	t_mount "$M"
	diff -r "$SRC" "$M/datasets/ds/v1" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "datasets/ds/v1 (from z1): $(head -5 "$T_ROOT/diff.out")"
	cmp "$M/snapshots/c1/${F[1]}" "$T_ROOT/new2" || t_fail "snapshots/c1 ${F[1]} is not the live content"
	[ ! -e "$M/snapshots/c1/${F[0]}" ] || t_fail "snapshots/c1 has the deleted ${F[0]}"
	t_umount "$M"
	t_backend_stop
done
[ -n "$kinds" ] || t_skip "needs rgw or file (DMFS_TEST_BACKENDS)"
t_done
