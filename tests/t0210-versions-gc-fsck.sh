#!/bin/bash
# t0210-versions-gc-fsck: `dmfs gc` removes exactly the content no ref
# reaches any more, and `dmfs fsck` finds what was broken behind its back.
#  - v1, a snapshot s1 of an intermediate state, v2; rm-version v1;
#    `gc --grace 0 --dry-run` lists, and `gc --grace 0` removes, exactly
#    set(v1) - set(v2) - set(s1) plus v1's manifest (computed here from
#    the manifests, checked with the server's listing); v2 and s1 still
#    read byte-exact; a second gc removes nothing; a running capture's
#    lease stops gc;
#  - fsck: 0 on a healthy store; an object rewritten with other bytes of
#    the same size is found by --deep only; a deleted object and a
#    manifest truncated to half make it exit 1 naming them.
. "$(dirname "$0")/lib/common.sh"
. "$T_SRC/tests/lib/versions.sh"

BASE=$T_ROOT/base
python3 "$T_SRC/tests/lib/mktree.py" "$BASE" 200 1 || t_fail "mktree"
SRC=$BASE
# Changes: v1 -> s1 rewrites A (twice: A' in s1, A'' in v2) and B; v2
# also rewrites C and deletes D.  Plain names only.
mapfile -t F < <(cd "$SRC" && find dir0[4-9] -name 'f*.dat' -size +1k | LC_ALL=C sort | awk 'NR % 7 == 0' | head -6)
[ "${#F[@]}" = 6 ] || t_fail "test setup: want 6 files, got ${#F[@]}"
A=${F[0]} B=${F[1]} C=${F[2]} D=${F[3]} E=${F[4]}
mkdir -p "$T_ROOT/new"
t_make_file "$T_ROOT/new/A1" 7001 A1
t_make_file "$T_ROOT/new/A2" 7002 A2
t_make_file "$T_ROOT/new/B1" 7003 B1
t_make_file "$T_ROOT/new/C1" 7004 C1

# The sha256 sets of the manifests refs name, from the bucket.
ref_shas() { v_manifest_shas "$(v_ref_manifest "$1")"; }
hex_of_key() { sed -n 's|.*\.dmfs/objects/sha256/\([0-9a-f]\{2\}\)/\([0-9a-f]\{62\}\)$|\1\2|p'; }

for kind in $(t_backends); do
	SRC=$BASE
	if [ "$kind" = s3rver ]; then
		SRC=$T_ROOT/src.s3rver
		v_s3rver_tree "$BASE" "$SRC"
	fi
	rm -rf "$T_ROOT/s1tree" "$T_ROOT/v2tree"
	t_backend_start "$kind"
	t_put_tree "$SRC"
	M=$T_ROOT/mnt
	cp -a "$SRC" "$T_ROOT/s1tree"
	t_dmfs commit ds v1 --from live >/dev/null 2>"$T_ROOT/err" || t_fail "commit v1: $(cat "$T_ROOT/err")"
	t_put_file "$T_ROOT/new/A1" "$A"
	cp "$T_ROOT/new/A1" "$T_ROOT/s1tree/$A"
	t_put_file "$T_ROOT/new/B1" "$B"
	cp "$T_ROOT/new/B1" "$T_ROOT/s1tree/$B"
	t_dmfs snapshot --id s1 >/dev/null 2>"$T_ROOT/err" || t_fail "snapshot s1: $(cat "$T_ROOT/err")"
	cp -a "$T_ROOT/s1tree" "$T_ROOT/v2tree"
	t_put_file "$T_ROOT/new/A2" "$A"
	cp "$T_ROOT/new/A2" "$T_ROOT/v2tree/$A"
	t_put_file "$T_ROOT/new/C1" "$C"
	cp "$T_ROOT/new/C1" "$T_ROOT/v2tree/$C"
	v_rm "$D"
	rm "$T_ROOT/v2tree/$D"
	t_dmfs commit ds v2 --from live >/dev/null 2>"$T_ROOT/err" || t_fail "commit v2: $(cat "$T_ROOT/err")"

	# --- fsck on a healthy store ---
	t_dmfs fsck >"$T_ROOT/fsck.out" 2>&1 || t_fail "fsck of a healthy store: $(cat "$T_ROOT/fsck.out")"
	t_dmfs fsck --deep >"$T_ROOT/fsck.out" 2>&1 || t_fail "fsck --deep of a healthy store: $(cat "$T_ROOT/fsck.out")"

	# --- what only v1 reached ---
	M1=$(v_ref_manifest datasets/ds/v1)
	ref_shas datasets/ds/v1 >"$T_ROOT/v1.shas"
	ref_shas datasets/ds/v2 >"$T_ROOT/v2.shas"
	ref_shas snapshots/s1 >"$T_ROOT/s1.shas"
	sort -u "$T_ROOT/v2.shas" "$T_ROOT/s1.shas" >"$T_ROOT/keep.shas"
	comm -23 "$T_ROOT/v1.shas" "$T_ROOT/keep.shas" >"$T_ROOT/want.shas"
	# A's and C's and D's old contents (unless the same bytes live on
	# elsewhere in the tree): the test must have something to collect.
	[ "$(wc -l <"$T_ROOT/want.shas")" -ge 1 ] || t_fail "test setup: nothing only v1 reaches"
	want_n=$(wc -l <"$T_ROOT/want.shas")
	v_keys .dmfs/objects/ >"$T_ROOT/objects.before"
	v_keys .dmfs/manifests/ >"$T_ROOT/manifests.before"

	t_dmfs rm-version ds v1 >"$T_ROOT/out" 2>"$T_ROOT/err" || t_fail "rm-version ds v1: $(cat "$T_ROOT/err")"
	v_exists .dmfs/refs/datasets/ds/v1 && t_fail "rm-version left the ref in the bucket"
	t_dmfs rm-version ds v1 >/dev/null 2>&1
	rc=$?
	[ "$rc" = 4 ] || t_fail "second rm-version exits $rc, want 4"

	# --- a capture's lease stops gc ---
	echo '{"ref":"datasets/x/y","by":"test","pid":1,"started":0}' >"$T_ROOT/lease"
	t_put_file "$T_ROOT/lease" ".dmfs/leases/test-lease"
	if t_dmfs gc --grace 0 >"$T_ROOT/gc.out" 2>&1; then
		t_fail "gc ran while a fresh lease exists: $(cat "$T_ROOT/gc.out")"
	fi
	v_keys .dmfs/objects/ | cmp -s - "$T_ROOT/objects.before" || t_fail "gc deleted objects despite a lease"
	v_rm ".dmfs/leases/test-lease"

	# --- dry run: lists exactly, deletes nothing ---
	t_dmfs gc --grace 0 --dry-run >"$T_ROOT/gc.out" 2>"$T_ROOT/err" ||
		t_fail "gc --dry-run failed: $(cat "$T_ROOT/err")"
	hex_of_key <"$T_ROOT/gc.out" | LC_ALL=C sort >"$T_ROOT/got.shas"
	diff "$T_ROOT/want.shas" "$T_ROOT/got.shas" >"$T_ROOT/diff.out" ||
		t_fail "gc --dry-run lists other objects (- want, + got): $(cat "$T_ROOT/diff.out")"
	grep -q "\.dmfs/manifests/sha256/$M1\$" "$T_ROOT/gc.out" ||
		t_fail "gc --dry-run does not list v1's manifest $M1: $(cat "$T_ROOT/gc.out")"
	[ "$(grep -c '\.dmfs/manifests/' "$T_ROOT/gc.out")" = 1 ] ||
		t_fail "gc --dry-run lists other manifests: $(grep '\.dmfs/manifests/' "$T_ROOT/gc.out")"
	v_keys .dmfs/objects/ | cmp -s - "$T_ROOT/objects.before" || t_fail "gc --dry-run deleted objects"
	v_keys .dmfs/manifests/ | cmp -s - "$T_ROOT/manifests.before" || t_fail "gc --dry-run deleted manifests"

	# --- gc: removes exactly those ---
	t_dmfs gc --grace 0 >"$T_ROOT/gc.out" 2>"$T_ROOT/err" || t_fail "gc failed: $(cat "$T_ROOT/err")"
	v_keys .dmfs/objects/ >"$T_ROOT/objects.after"
	cut -d' ' -f2 "$T_ROOT/objects.before" | hex_of_key | LC_ALL=C sort >"$T_ROOT/b.shas"
	cut -d' ' -f2 "$T_ROOT/objects.after" | hex_of_key | LC_ALL=C sort >"$T_ROOT/a.shas"
	comm -23 "$T_ROOT/b.shas" "$T_ROOT/a.shas" >"$T_ROOT/gone.shas"
	diff "$T_ROOT/want.shas" "$T_ROOT/gone.shas" >"$T_ROOT/diff.out" ||
		t_fail "gc removed other objects than only v1 reached (- want, + removed): $(cat "$T_ROOT/diff.out")"
	[ "$(comm -13 "$T_ROOT/b.shas" "$T_ROOT/a.shas" | wc -l)" = 0 ] || t_fail "objects appeared during gc"
	v_exists ".dmfs/manifests/sha256/$M1" && t_fail "gc kept v1's manifest"
	[ "$(v_count .dmfs/manifests/ | cut -d' ' -f1)" = $(($(wc -l <"$T_ROOT/manifests.before") - 1)) ] ||
		t_fail "gc removed other manifests: $(v_keys .dmfs/manifests/)"
	grep -q "removed $want_n objects and 1 manifests" "$T_ROOT/gc.out" ||
		t_fail "gc summary: $(cat "$T_ROOT/gc.out")"
	t_log "gc removed exactly the $want_n objects only v1 reached, and its manifest"

	# Nothing more to collect.
	t_dmfs gc --grace 0 >"$T_ROOT/gc.out" 2>"$T_ROOT/err" || t_fail "second gc failed: $(cat "$T_ROOT/err")"
	grep -q "^removed 0 objects and 0 manifests" "$T_ROOT/gc.out" || t_fail "second gc: $(cat "$T_ROOT/gc.out")"
	v_keys .dmfs/objects/ | cmp -s - "$T_ROOT/objects.after" || t_fail "second gc removed objects"

	# What remains reads byte-exact (fresh cache).
	rm -rf "$T_ROOT/cache"
	t_mount "$M"
	[ ! -e "$M/datasets/ds/v1" ] || t_fail "datasets/ds/v1 still shows after rm-version"
	diff -r "$T_ROOT/v2tree" "$M/datasets/ds/v2" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "v2 after gc: $(head -5 "$T_ROOT/diff.out")"
	diff -r "$T_ROOT/s1tree" "$M/snapshots/s1" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "s1 after gc: $(head -5 "$T_ROOT/diff.out")"
	t_umount "$M"
	t_dmfs fsck >"$T_ROOT/fsck.out" 2>&1 || t_fail "fsck after gc: $(cat "$T_ROOT/fsck.out")"

	# --- fsck --deep: other bytes of the same size ---
	hexE=$(v_sha256 "$SRC/$E")
	keyE=$(v_object_key "$hexE")
	grep -qx "$hexE" "$T_ROOT/v2.shas" || t_fail "test setup: $E is not in v2"
	python3 -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[0] ^= 0xff; open(sys.argv[2], "wb").write(d)' \
		"$SRC/$E" "$T_ROOT/E.bad"
	t_put_file "$T_ROOT/E.bad" "$keyE"
	t_dmfs fsck >"$T_ROOT/fsck.out" 2>&1 ||
		t_fail "fsck (not deep) should not read content, yet failed: $(cat "$T_ROOT/fsck.out")"
	t_dmfs fsck --deep >"$T_ROOT/fsck.out" 2>&1
	rc=$?
	[ "$rc" = 1 ] || t_fail "fsck --deep of a damaged object exits $rc, want 1: $(cat "$T_ROOT/fsck.out")"
	grep -qF "$E" "$T_ROOT/fsck.out" || grep -qF "$hexE" "$T_ROOT/fsck.out" ||
		t_fail "fsck --deep does not name the damaged $E: $(cat "$T_ROOT/fsck.out")"
	t_put_file "$SRC/$E" "$keyE"

	# --- fsck: an object deleted behind its back ---
	v_rm "$keyE"
	t_dmfs fsck >"$T_ROOT/fsck.out" 2>&1
	rc=$?
	[ "$rc" = 1 ] || t_fail "fsck with a missing object exits $rc, want 1: $(cat "$T_ROOT/fsck.out")"
	grep -qF "$hexE" "$T_ROOT/fsck.out" || grep -qF "$E" "$T_ROOT/fsck.out" ||
		t_fail "fsck does not name the missing object $hexE ($E): $(cat "$T_ROOT/fsck.out")"
	grep -q "datasets/ds/v2" "$T_ROOT/fsck.out" || t_fail "fsck does not name the ref: $(cat "$T_ROOT/fsck.out")"
	t_put_file "$SRC/$E" "$keyE"
	t_dmfs fsck >"$T_ROOT/fsck.out" 2>&1 || t_fail "fsck after restoring the object: $(cat "$T_ROOT/fsck.out")"

	# --- fsck: a manifest truncated to half ---
	M2=$(v_ref_manifest datasets/ds/v2)
	v_get ".dmfs/manifests/sha256/$M2" "$T_ROOT/m2" || t_fail "get manifest v2"
	head -c $(($(stat -c %s "$T_ROOT/m2") / 2)) "$T_ROOT/m2" >"$T_ROOT/m2.half"
	t_put_file "$T_ROOT/m2.half" ".dmfs/manifests/sha256/$M2"
	t_dmfs fsck >"$T_ROOT/fsck.out" 2>&1
	rc=$?
	[ "$rc" = 1 ] || t_fail "fsck with a truncated manifest exits $rc, want 1: $(cat "$T_ROOT/fsck.out")"
	grep -q "datasets/ds/v2" "$T_ROOT/fsck.out" ||
		t_fail "fsck does not name the ref of the truncated manifest: $(cat "$T_ROOT/fsck.out")"
	grep -q "snapshots/s1:" "$T_ROOT/fsck.out" && t_fail "fsck blames the healthy s1: $(cat "$T_ROOT/fsck.out")"
	t_log "fsck: healthy 0; damaged object (--deep), missing object, truncated manifest: 1"
	t_backend_stop
done
t_done
