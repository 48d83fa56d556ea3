#!/bin/bash
# t0200-versions: dataset versions and snapshots end to end.
#  - `dmfs commit` of a 1 000-file tree reads back equal through the mount
#    (diff -r, cp -r), and the content store holds each distinct content
#    once (checked with the server's own listing);
#  - v1 keeps the old bytes after live objects are overwritten and deleted
#    (fresh mount, empty cache);
#  - v2 after changing 1% of the files stores only the new contents;
#  - two snapshots of an unchanged tree: the second adds one manifest and
#    no object;
#  - latest symlinks follow new versions and snapshots;
#  - writes inside versions fail with EROFS;
#  - `dmfs diff` lists exactly the A/D/M paths (text and --json), `dmfs log`
#    lists newest first (text and --json); exit codes 3 and 4.
. "$(dirname "$0")/lib/common.sh"
. "$T_SRC/tests/lib/versions.sh"

BASE=$T_ROOT/base
python3 "$T_SRC/tests/lib/mktree.py" "$BASE" 1000 1 || t_fail "mktree"

# The change, chosen once from the tree: plain names, spread over the dirs.
python3 - "$BASE" "$T_ROOT/chg" <<'PY' || t_fail "choosing the changes"
import os, sys
src, out = sys.argv[1], sys.argv[2]
files = sorted(
    os.path.relpath(os.path.join(d, n), src)
    for d, _, fs in os.walk(src) for n in fs
    if n.startswith("f") and n.endswith(".dat"))
mod = files[7::97][:10]
dele = [f for f in files[50::97] if f not in mod][:5]
add = ["added-at-root.txt", "dir03/sub 1/new file.dat", "newdir/deeper/added.bin"]
assert len(mod) == 10 and len(dele) == 5, (len(mod), len(dele))
for name, v in (("mod", mod), ("del", dele), ("add", add)):
    with open(f"{out}.{name}", "w") as f:
        f.write("\n".join(v) + "\n")
PY
mapfile -t MOD <"$T_ROOT/chg.mod"
mapfile -t DEL <"$T_ROOT/chg.del"
mapfile -t ADD <"$T_ROOT/chg.add"

# prepare DIR: DIR/src (v1, from BASE; for s3rver without the names it
# cannot copy, see v_s3rver_tree), DIR/src2 (v2: 10 files rewritten, 5
# deleted, 3 added), DIR/want.diff and want.json (what `dmfs diff v1 v2`
# must say) and DIR/want.grow ("COUNT BYTES" v2 adds to the store).
prepare() {
	local d=$1 kind=$2 i p
	[ -f "$d/want.grow" ] && return 0
	mkdir -p "$d"
	if [ "$kind" = s3rver ]; then
		v_s3rver_tree "$BASE" "$d/src"
	else
		cp -a "$BASE" "$d/src"
	fi
	cp -a "$d/src" "$d/src2"
	for i in "${!MOD[@]}"; do t_make_file "$d/src2/${MOD[$i]}" $((5000 + i * 777)) "mod-$i"; done
	for p in "${DEL[@]}"; do rm "$d/src2/$p" || t_fail "test setup: rm $p"; done
	for i in "${!ADD[@]}"; do
		mkdir -p "$(dirname "$d/src2/${ADD[$i]}")"
		t_make_file "$d/src2/${ADD[$i]}" $((3000 + i * 1000)) "add-$i"
	done
	python3 - "$d/src" "$d/src2" "$d/want" <<'PY' || t_fail "computing the expected diff"
import hashlib, json, os, sys
def tree(root):
    t = {}
    for d, _, fs in os.walk(root):
        for n in fs:
            p = os.path.join(d, n)
            t[os.path.relpath(p, root)] = (hashlib.sha256(open(p, "rb").read()).hexdigest(),
                                           os.path.getsize(p))
    return t
a, b, out = tree(sys.argv[1]), tree(sys.argv[2]), sys.argv[3]
lines, items, tot = [], [], {"A": [0, 0], "D": [0, 0], "M": [0, 0]}
for p in sorted(set(a) | set(b), key=lambda s: s.encode()):
    if p not in b:
        lines.append(f"D  {p}  ({a[p][1]} bytes)"); items.append(["removed", p]); k, n = "D", a[p][1]
    elif p not in a:
        lines.append(f"A  {p}  ({b[p][1]} bytes)"); items.append(["added", p]); k, n = "A", b[p][1]
    elif a[p][0] != b[p][0]:
        lines.append(f"M  {p}  ({a[p][1]} -> {b[p][1]} bytes)"); items.append(["changed", p]); k, n = "M", b[p][1]
    else:
        continue
    tot[k][0] += 1; tot[k][1] += n
open(out + ".diff", "w").write("\n".join(lines) + "\n")
json.dump({"items": sorted(items), "tot": tot}, open(out + ".json", "w"))
old = {h for h, _ in a.values()}
new = {h: s for h, s in b.values() if h not in old}
open(out + ".grow", "w").write(f"{len(new)} {sum(new.values())}\n")
PY
}

drop_page_cache() {
	sync
	echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

# check_log_order OUTPUT NEWER OLDER: NEWER's line comes before OLDER's.
check_log_order() {
	local out=$1 newer=$2 older=$3 ln ls
	ln=$(echo "$out" | grep -n -E "(^|[^A-Za-z0-9_.-])$newer([^A-Za-z0-9_.-]|\$)" | head -1 | cut -d: -f1)
	ls=$(echo "$out" | grep -n -E "(^|[^A-Za-z0-9_.-])$older([^A-Za-z0-9_.-]|\$)" | head -1 | cut -d: -f1)
	[ -n "$ln" ] && [ -n "$ls" ] || t_fail "dmfs log does not show both $newer and $older:
$out"
	[ "$ln" -lt "$ls" ] || t_fail "dmfs log: $newer is not listed before $older:
$out"
}

for kind in $(t_backends); do
	case $kind in s3rver) TD=$T_ROOT/plain ;; *) TD=$T_ROOT/full ;; esac
	prepare "$TD" "$kind"
	SRC=$TD/src SRC2=$TD/src2
	read -r GROW_N GROW_B <"$TD/want.grow"
	[ "$GROW_N" = 13 ] || t_fail "test setup: v2 should add 13 contents, not $GROW_N"
	V1_OBJECTS=$(v_tree_objects "$SRC")
	NFILES=$(find "$SRC" -type f | wc -l)
	NBYTES=$(find "$SRC" -type f -printf '%s\n' | awk '{ b += $1 } END { print b }')

	t_backend_start "$kind"
	t_put_tree "$SRC"
	M=$T_ROOT/mnt

	# --- v1 from live ---
	t_dmfs commit ds v1 --from live -m "first version" >"$T_ROOT/out" 2>"$T_ROOT/err" ||
		t_fail "commit v1 failed: $(cat "$T_ROOT/err")"
	grep -q "datasets/ds/v1" "$T_ROOT/out" || t_fail "commit output: $(cat "$T_ROOT/out")"
	# One object per distinct content, no more and no less.
	got=$(v_count .dmfs/objects/)
	[ "$got" = "$V1_OBJECTS" ] ||
		t_fail "content store after v1 holds '$got' (count bytes), want '$V1_OBJECTS'"
	[ "$(v_count .dmfs/manifests/ | cut -d' ' -f1)" = 1 ] ||
		t_fail "want 1 manifest: $(v_keys .dmfs/manifests/)"
	v_exists .dmfs/refs/datasets/ds/v1 || t_fail "no ref .dmfs/refs/datasets/ds/v1 in the bucket"
	v_get .dmfs/refs/datasets/ds/v1 "$T_ROOT/ref.json" || t_fail "get ref"
	python3 - "$T_ROOT/ref.json" "$NFILES" "$NBYTES" <<'PY' || t_fail "ref v1: $(cat "$T_ROOT/ref.json")"
import json, sys
r = json.load(open(sys.argv[1]))
h = r["header"]
assert len(r["manifest"]) == 64, r
assert h["kind"] == "dataset" and h["name"] == "ds" and h["version"] == "v1", h
assert h["files"] == int(sys.argv[2]) and h["bytes"] == int(sys.argv[3]), h
assert h.get("message") == "first version", h
PY
	# The manifest is the one the ref names, and is sorted JSONL.
	mhash=$(v_ref_manifest datasets/ds/v1)
	v_get ".dmfs/manifests/sha256/$mhash" "$T_ROOT/m1" || t_fail "get manifest"
	[ "$(v_sha256 "$T_ROOT/m1")" = "$mhash" ] || t_fail "manifest bytes do not hash to its name"
	python3 - "$T_ROOT/m1" "$NFILES" <<'PY' || t_fail "manifest v1 is not sorted JSONL with $NFILES entries"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert json.loads(lines[0])["dmfs_manifest"] == 1
paths = [json.loads(l)["path"] for l in lines[1:]]
assert len(paths) == int(sys.argv[2]), len(paths)
assert paths == sorted(paths, key=lambda s: s.encode()), "unsorted"
PY

	# --- read v1 through a mount ---
	t_mount "$M"
	[ "$(ls "$M/datasets/ds" | tr '\n' ' ')" = "latest v1 " ] ||
		t_fail "datasets/ds shows: $(ls "$M/datasets/ds" | tr '\n' ' ')"
	[ "$(readlink "$M/datasets/ds/latest")" = v1 ] ||
		t_fail "datasets/ds/latest -> $(readlink "$M/datasets/ds/latest")"
	diff -r "$SRC" "$M/datasets/ds/v1" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "diff -r src datasets/ds/v1: $(head -5 "$T_ROOT/diff.out")"
	cp -r "$M/datasets/ds/v1" "$T_ROOT/out1" || t_fail "cp -r datasets/ds/v1"
	diff -r "$SRC" "$T_ROOT/out1" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "cp -r copy differs: $(head -5 "$T_ROOT/diff.out")"
	rm -rf "$T_ROOT/out1"
	t_log "v1: $NFILES files equal through the mount (diff -r, cp -r)"

	# --- read-only ---
	V=$M/datasets/ds/v1
	f=${MOD[0]}
	v_expect_erofs "touch a new file" touch "$V/newfile"
	v_expect_erofs "touch an existing file" touch "$V/$f"
	v_expect_erofs "rm" rm -f "$V/$f"
	v_expect_erofs "rm -r" rm -r "$V/q"
	v_expect_erofs "mkdir" mkdir "$V/newdir"
	v_expect_erofs "echo >" bash -c 'echo x >"$1"' _ "$V/$f"
	v_expect_erofs "echo >>" bash -c 'echo x >>"$1"' _ "$V/$f"
	v_expect_erofs "truncate" truncate -s 0 "$V/$f"
	v_expect_erofs "mv" mv "$V/$f" "$V/$f.moved"
	v_expect_erofs "chmod" chmod 600 "$V/$f"
	v_expect_erofs "ln -s" ln -s x "$V/link"
	v_expect_erofs "setfattr" setfattr -n user.label -v cat "$V/$f"
	v_expect_erofs "mv into the version" mv "$M/live/${MOD[1]}" "$V/stolen"
	if mkdir "$M/datasets/ds/v9" 2>/dev/null; then t_fail "mkdir datasets/ds/v9 succeeded"; fi
	cmp "$V/$f" "$SRC/$f" || t_fail "$f changed after the failed writes"
	[ -e "$V/$f.moved" ] && t_fail "mv left $f.moved"
	t_umount "$M"

	# --- live changes: v1 keeps the old bytes ---
	for p in "${MOD[@]}"; do t_put_file "$SRC2/$p" "$p"; done
	for p in "${DEL[@]}"; do v_rm "$p"; done
	for p in "${ADD[@]}"; do t_put_file "$SRC2/$p" "$p"; done
	rm -rf "$T_ROOT/cache"
	drop_page_cache
	t_mount "$M"
	diff -r "$SRC" "$M/datasets/ds/v1" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "v1 after live changes (fresh cache): $(head -5 "$T_ROOT/diff.out")"
	[ "$(t_status "$M" s3.bytes_fetched)" -gt 0 ] ||
		t_fail "a fresh cache read v1 without fetching anything"
	for p in "${MOD[@]}"; do cmp "$M/live/$p" "$SRC2/$p" || t_fail "live $p is not the new content"; done
	for p in "${DEL[@]}"; do [ ! -e "$M/live/$p" ] || t_fail "live $p still there"; done
	t_umount "$M"
	t_log "v1 reads the old bytes after 10 overwrites and 5 deletes in live"

	# --- v2: only the changed contents are stored ---
	read -r n0 b0 <<<"$(v_count .dmfs/objects/)"
	t_dmfs commit ds v2 --from live -m "second" >"$T_ROOT/out" 2>"$T_ROOT/err" ||
		t_fail "commit v2 failed: $(cat "$T_ROOT/err")"
	read -r n1 b1 <<<"$(v_count .dmfs/objects/)"
	[ $((n1 - n0)) = "$GROW_N" ] && [ $((b1 - b0)) = "$GROW_B" ] ||
		t_fail "v2 grew the content store by $((n1 - n0)) objects / $((b1 - b0)) bytes, want $GROW_N / $GROW_B"
	t_log "v2 added $GROW_N objects ($GROW_B bytes) for 18 changed files"

	# --- dmfs diff ---
	t_dmfs diff datasets/ds/v1 datasets/ds/v2 >"$T_ROOT/diff.txt" 2>"$T_ROOT/err" ||
		t_fail "dmfs diff failed: $(cat "$T_ROOT/err")"
	head -n -1 "$T_ROOT/diff.txt" >"$T_ROOT/diff.body"
	diff "$TD/want.diff" "$T_ROOT/diff.body" >"$T_ROOT/diff.out" ||
		t_fail "dmfs diff v1 v2 lists other paths (- want, + got): $(head -20 "$T_ROOT/diff.out")"
	tail -1 "$T_ROOT/diff.txt" | grep -qE '^3 added \(.*\), 5 removed \(.*\), 10 changed \(.*\)$' ||
		t_fail "dmfs diff totals line: $(tail -1 "$T_ROOT/diff.txt")"
	t_dmfs diff datasets/ds/v1 datasets/ds/v2 --json >"$T_ROOT/diff.json" 2>"$T_ROOT/err" ||
		t_fail "dmfs diff --json failed: $(cat "$T_ROOT/err")"
	python3 - "$T_ROOT/diff.json" "$TD/want.json" <<'PY' || t_fail "dmfs diff --json: $(head -c 600 "$T_ROOT/diff.json")"
import json, sys
got, want = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
items = sorted([i["status"], i["path"]] for i in got["files"])
assert items == want["items"], (items, want["items"])
for k, name in (("A", "added"), ("D", "removed"), ("M", "changed")):
    assert [got[name]["files"], got[name]["bytes"]] == want["tot"][k], (name, got[name], want["tot"][k])
PY
	# Live now equals v2 (hashes from the memo or read again).
	t_dmfs diff live datasets/ds/v2 >"$T_ROOT/diff.txt" 2>"$T_ROOT/err" ||
		t_fail "dmfs diff live v2 failed: $(cat "$T_ROOT/err")"
	[ "$(cat "$T_ROOT/diff.txt")" = "0 added (0 B), 0 removed (0 B), 0 changed (0 B now)" ] ||
		t_fail "diff live v2 is not empty: $(head -5 "$T_ROOT/diff.txt")"

	# --- dmfs log ---
	out=$(t_dmfs log 2>"$T_ROOT/err") || t_fail "dmfs log failed: $(cat "$T_ROOT/err")"
	check_log_order "$out" v2 v1
	out=$(t_dmfs log ds 2>"$T_ROOT/err") || t_fail "dmfs log ds failed: $(cat "$T_ROOT/err")"
	check_log_order "$out" v2 v1
	t_dmfs log ds --json >"$T_ROOT/log.json" 2>"$T_ROOT/err" || t_fail "dmfs log --json failed: $(cat "$T_ROOT/err")"
	python3 - "$T_ROOT/log.json" <<'PY' || t_fail "dmfs log --json: $(head -c 800 "$T_ROOT/log.json")"
import json, sys
d = json.load(open(sys.argv[1]))
if isinstance(d, dict):  # {"refs": [...]} or similar
    d = next(v for v in d.values() if isinstance(v, list))
def version(it):
    h = it.get("header", it)
    if h.get("version"):
        return h["version"]
    for k in ("ref", "name"):
        if isinstance(it.get(k), str) and it[k].startswith("datasets/"):
            return it[k].split("/")[2]
order = [version(it) for it in d]
assert order == ["v2", "v1"], order
PY

	# --- exit codes ---
	t_dmfs commit ds v1 --from live >/dev/null 2>"$T_ROOT/err"
	rc=$?
	[ "$rc" = 3 ] || t_fail "committing an existing version exits $rc, want 3"
	grep -q "version exists" "$T_ROOT/err" || t_fail "existing version: $(cat "$T_ROOT/err")"
	t_dmfs rm-version ds nosuch >/dev/null 2>&1
	rc=$?
	[ "$rc" = 4 ] || t_fail "rm-version of a missing version exits $rc, want 4"
	t_dmfs diff datasets/ds/v1 datasets/ds/nosuch >/dev/null 2>&1
	rc=$?
	[ "$rc" = 4 ] || t_fail "diff against a missing version exits $rc, want 4"
	if t_dmfs commit ds latest --from live >/dev/null 2>&1; then t_fail "a version named 'latest' was accepted"; fi

	# --- two snapshots of an unchanged tree ---
	objs0=$(v_count .dmfs/objects/)
	man0=$(v_count .dmfs/manifests/ | cut -d' ' -f1)
	t_dmfs snapshot --id s1 -m "nightly" >"$T_ROOT/out" 2>"$T_ROOT/err" ||
		t_fail "snapshot s1 failed: $(cat "$T_ROOT/err")"
	[ "$(v_count .dmfs/objects/)" = "$objs0" ] ||
		t_fail "snapshot of live == v2 stored objects: $objs0 -> $(v_count .dmfs/objects/)"
	sleep 1.1 # a later creation second than s1's
	t_dmfs snapshot --id s2 -m "nightly" >"$T_ROOT/out" 2>"$T_ROOT/err" ||
		t_fail "snapshot s2 failed: $(cat "$T_ROOT/err")"
	[ "$(v_count .dmfs/objects/)" = "$objs0" ] ||
		t_fail "second snapshot of an unchanged tree stored objects: $objs0 -> $(v_count .dmfs/objects/)"
	man2=$(v_count .dmfs/manifests/ | cut -d' ' -f1)
	[ "$man2" = $((man0 + 2)) ] || t_fail "two snapshots made $((man2 - man0)) manifests, want 2"
	grep -q " 0 new objects" "$T_ROOT/out" || t_fail "snapshot s2 output: $(cat "$T_ROOT/out")"
	t_log "second snapshot of an unchanged tree: one manifest, no object"

	# --- latest follows ---
	t_mount "$M"
	[ "$(readlink "$M/datasets/ds/latest")" = v2 ] ||
		t_fail "datasets/ds/latest -> $(readlink "$M/datasets/ds/latest"), want v2"
	[ "$(readlink "$M/snapshots/latest")" = s2 ] ||
		t_fail "snapshots/latest -> $(readlink "$M/snapshots/latest"), want s2"
	ls -l "$M/datasets/ds" | grep -q 'latest -> v2$' || t_fail "ls -l datasets/ds: $(ls -l "$M/datasets/ds")"
	diff -r "$SRC2" "$M/datasets/ds/v2" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "diff -r src2 datasets/ds/v2: $(head -5 "$T_ROOT/diff.out")"
	diff -r "$SRC2" "$M/snapshots/s2" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "diff -r src2 snapshots/s2: $(head -5 "$T_ROOT/diff.out")"
	v_expect_erofs "touch in a snapshot" touch "$M/snapshots/s2/newfile"
	sleep 1.1
	# New versions from other sources (a version, sub-directories).
	t_dmfs commit ds v3 --from datasets/ds/v2 >/dev/null 2>"$T_ROOT/err" ||
		t_fail "commit v3 from datasets/ds/v2: $(cat "$T_ROOT/err")"
	[ "$(v_count .dmfs/objects/)" = "$objs0" ] || t_fail "a version made from a version stored objects"
	t_dmfs commit part new --from "live/dir01" >/dev/null 2>"$T_ROOT/err" ||
		t_fail "commit from live/dir01: $(cat "$T_ROOT/err")"
	t_dmfs commit part old --from "datasets/ds/v1/dir00" >/dev/null 2>"$T_ROOT/err" ||
		t_fail "commit from datasets/ds/v1/dir00: $(cat "$T_ROOT/err")"
	t_dmfs snapshot --id s3 >/dev/null 2>"$T_ROOT/err" || t_fail "snapshot s3: $(cat "$T_ROOT/err")"
	echo refresh >"$M/.dmfs/ctl" || t_fail "write refresh to .dmfs/ctl"
	[ "$(readlink "$M/datasets/ds/latest")" = v3 ] ||
		t_fail "after v3 and refresh: datasets/ds/latest -> $(readlink "$M/datasets/ds/latest")"
	[ "$(readlink "$M/snapshots/latest")" = s3 ] ||
		t_fail "after s3 and refresh: snapshots/latest -> $(readlink "$M/snapshots/latest")"
	[ "$(ls "$M/datasets/ds" | tr '\n' ' ')" = "latest v1 v2 v3 " ] ||
		t_fail "datasets/ds shows: $(ls "$M/datasets/ds" | tr '\n' ' ')"
	diff -r "$SRC2" "$M/datasets/ds/v3" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "diff -r src2 datasets/ds/v3: $(head -5 "$T_ROOT/diff.out")"
	diff -r "$SRC2/dir01" "$M/datasets/part/new" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "diff -r src2/dir01 datasets/part/new: $(head -5 "$T_ROOT/diff.out")"
	diff -r "$SRC/dir00" "$M/datasets/part/old" >"$T_ROOT/diff.out" 2>&1 ||
		t_fail "diff -r src/dir00 datasets/part/old: $(head -5 "$T_ROOT/diff.out")"
	t_umount "$M"
	t_backend_stop
done
t_done
