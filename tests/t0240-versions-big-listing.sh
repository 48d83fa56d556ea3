#!/bin/bash
# t0240-versions-big-listing: a 200 000-file version is listed from its
# manifest, not from S3.  The test writes the version itself - a manifest
# whose entries all point at a few uploaded content objects, uploaded
# under its hash, and a ref - so it needs no 200 000 uploads.  Then:
#  - `find` in the mount gives every file and directory;
#  - the mount's S3 requests grow by far fewer than the number of files;
#  - `ls -l` of one directory shows names and sizes; files read right;
#  - `dmfs fsck` and `dmfs log` handle it.
. "$(dirname "$0")/lib/common.sh"
. "$T_SRC/tests/lib/versions.sh"

NDIRS=${DMFS_TEST_BIG_DIRS:-200} # x 10 subdirs x 100 files
NFILES=$((NDIRS * 1000))
MAXREQ=100
OBJ=$T_ROOT/obj
mkdir -p "$OBJ"
printf 'alpha\n' >"$OBJ/0"
t_make_file "$OBJ/1" 4096 one
t_make_file "$OBJ/2" 100000 two

# The manifest (sorted by path, in byte order) and the ref.
python3 - "$OBJ" "$NDIRS" "$T_ROOT" <<'PY' || t_fail "writing the manifest"
import hashlib, json, os, sys, time
objdir, ndirs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
objs = []
for i in range(3):
    b = open(os.path.join(objdir, str(i)), "rb").read()
    objs.append((hashlib.sha256(b).hexdigest(), len(b)))
now = int(time.time())
entries, dirs = [], {}
for d in range(ndirs):
    top = f"d{d:03d}"
    for s in range(10):
        for f in range(100):
            sha, size = objs[(d + s + f) % 3]
            entries.append({"path": f"{top}/s{s}/f{f:03d}.bin", "size": size, "mode": 0o644,
                            "mtime": 1700000000 + f, "sha256": sha})
            st = dirs.setdefault(top, {"files": 0, "bytes": 0})
            st["files"] += 1
            st["bytes"] += size
entries.sort(key=lambda e: e["path"].encode())
header = {"dmfs_manifest": 1, "kind": "dataset", "name": "big", "version": "v1",
          "created": now, "created_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
          "author": "t", "message": "built by t0240", "parent": None, "source": "test",
          "mode": "copy", "files": len(entries), "bytes": sum(e["size"] for e in entries),
          "dirs": dirs}
sep = (",", ":")
body = json.dumps(header, separators=sep) + "\n" + "".join(
    json.dumps(e, separators=sep) + "\n" for e in entries)
data = body.encode()
h = hashlib.sha256(data).hexdigest()
open(os.path.join(out, "manifest"), "wb").write(data)
open(os.path.join(out, "manifest.hash"), "w").write(h + "\n")
json.dump({"manifest": h, "writer": "t0240", "header": header}, open(os.path.join(out, "ref"), "w"))
print(f"# t0240: manifest {h}: {len(entries)} entries, {len(data)} bytes")
PY
MHASH=$(cat "$T_ROOT/manifest.hash")
[ "$NDIRS" -gt 100 ] && DIR=d100 || DIR=d000

for kind in $(t_backends); do
	case $kind in rgw | file) ;; *) continue ;; esac
	t_backend_start "$kind"
	for i in 0 1 2; do
		t_put_file "$OBJ/$i" "$(v_object_key "$(v_sha256 "$OBJ/$i")")"
	done
	t_put_file "$T_ROOT/manifest" ".dmfs/manifests/sha256/$MHASH"
	t_put_file "$T_ROOT/ref" ".dmfs/refs/datasets/big/v1"
	M=$T_ROOT/mnt
	t_mount "$M"

	req0=$(t_status "$M" s3.requests)
	start=$(date +%s)
	n=$(find "$M/datasets/big/v1" -type f | wc -l)
	[ "$n" = "$NFILES" ] || t_fail "find -type f counts $n files, want $NFILES"
	n=$(find "$M/datasets/big/v1" | wc -l)
	want=$((NFILES + NDIRS * 11 + 1))
	[ "$n" = "$want" ] || t_fail "find counts $n names, want $want"
	secs=$(($(date +%s) - start))
	req1=$(t_status "$M" s3.requests)
	t_log "find of $NFILES files twice: ${secs}s, $((req1 - req0)) S3 requests"
	[ $((req1 - req0)) -lt "$MAXREQ" ] ||
		t_fail "listing $NFILES files took $((req1 - req0)) requests (want < $MAXREQ)"

	# One directory in full, with sizes and mtimes from the manifest.
	ls -l --time-style=+%s "$M/datasets/big/v1/$DIR/s5" >"$T_ROOT/ls.out" || t_fail "ls -l"
	python3 - "$T_ROOT/ls.out" "$OBJ" "${DIR#d}" <<'PY' || t_fail "ls -l $DIR/s5: $(head -5 "$T_ROOT/ls.out")"
import os, sys
lines = [l.split() for l in open(sys.argv[1]) if not l.startswith("total")]
sizes = [os.path.getsize(os.path.join(sys.argv[2], str(i))) for i in range(3)]
d = int(sys.argv[3])
assert len(lines) == 100, len(lines)
for f, l in enumerate(lines):
    assert l[-1] == f"f{f:03d}.bin", l
    assert l[0].startswith("-r"), l
    assert int(l[4]) == sizes[(d + 5 + f) % 3], (l, sizes[(d + 5 + f) % 3])
    assert int(l[5]) == 1700000000 + f, l
PY
	for f in 0 1 2 57 99; do
		want_obj=$(((10#${DIR#d} + 5 + f) % 3))
		p=$M/datasets/big/v1/$DIR/s5/f$(printf %03d "$f").bin
		cmp "$p" "$OBJ/$want_obj" || t_fail "reading $p differs from object $want_obj"
	done
	# The last file in path order, too.
	last=$(printf 'd%03d/s9/f099.bin' $((NDIRS - 1)))
	cmp "$M/datasets/big/v1/$last" "$OBJ/$(((NDIRS - 1 + 9 + 99) % 3))" || t_fail "reading $last"
	[ "$(ls "$M/datasets/big/v1" | wc -l)" = "$NDIRS" ] || t_fail "ls of the version root"
	t_umount "$M"

	t_dmfs fsck >"$T_ROOT/fsck.out" 2>&1 || t_fail "fsck: $(cat "$T_ROOT/fsck.out")"
	grep -q "$NFILES files checked" "$T_ROOT/fsck.out" || t_fail "fsck: $(cat "$T_ROOT/fsck.out")"
	t_dmfs log big >"$T_ROOT/log.out" 2>&1 || t_fail "dmfs log: $(cat "$T_ROOT/log.out")"
	grep -q "v1" "$T_ROOT/log.out" || t_fail "dmfs log big: $(cat "$T_ROOT/log.out")"
	t_backend_stop
done
t_done
