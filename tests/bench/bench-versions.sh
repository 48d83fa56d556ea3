#!/bin/bash
# tests/bench/bench-versions.sh - what versions cost, measured against the
# "upload the whole tree under a timestamp prefix" scripts they replace.
# Not part of `make check`.
#
#   bash tests/bench/bench-versions.sh [--server rgw|s3rver] [--files N]
#                                      [--mb-total N] [--list-files N]
#
# 1. Snapshots of a tree of --files files (default 10 000) holding
#    --mb-total MiB (default 1024) in the bucket: the first `dmfs snapshot`,
#    a second of the unchanged tree, a third after 1 % of the files changed.
#    For each: seconds, bytes read by dmfs to hash, bytes added under
#    .dmfs/objects/ (the server's own listing) and the manifest's size.
#    Against it, the old way, in the same run on the same server:
#    `aws s3 cp --recursive` of the local tree to a new timestamp prefix
#    (what backup scripts did every night), timed and sized the same way.
# 2. When the mount serves datasets/ (the versions namespace): `find` and
#    `ls -lR` over a version of --list-files files (default 1 000 000),
#    cold (manifest not yet indexed on this machine), warm (indexed; the
#    kernel's caches dropped) and hot (kernel caches kept), and the peak
#    RSS of the dmfs process.
# Needs root and the packages of tests/setup-deps.sh.  Prints tables.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
DMFS=${DMFS:-$SRC/dmfs}
SERVER=rgw NFILES=10000 MB_TOTAL=1024 NLIST=1000000
. "$HERE/lib.sh"
bench_args --server=SERVER --files=NFILES --mb-total=MB_TOTAL --list-files=NLIST -- "$@"

bench_workdir dmfs-bench-versions
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

log "starting $SERVER"
bench_server_start
B=bench
s3_aws s3 mb s3://$B >/dev/null
bench_aws_parallel
STORE=s3://$B/data
OPTS="endpoint=$S3_ENDPOINT,cache_dir=$W/cache"

# prefix_bytes PREFIX: "COUNT BYTES" under a prefix, from the server.
prefix_bytes() {
	s3_aws s3api list-objects-v2 --bucket $B --prefix "$1" \
		--query '[length(Contents || `[]`), sum(Contents[].Size || `[0]`)]' --output text |
		awk '{n += $1; b += $2} END {printf "%d %d\n", n, b}'
}

log "making a tree of $NFILES files, $MB_TOTAL MiB, and uploading it"
python3 - "$W/tree" "$NFILES" "$MB_TOTAL" <<'PY'
import os, sys
root, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = (mb << 20) // n
for i in range(n):
    d = os.path.join(root, f"d{i % 100:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}.bin"), "wb") as f:
        f.write(os.urandom(size))
PY
s3_aws s3 cp --recursive --quiet --only-show-errors "$W/tree" "$STORE/" >/dev/null

# snap LABEL: one dmfs snapshot, one table row.
ROWS=()
snap() {
	local label=$1 t0 t1 out hashed before after man
	read -r _ before < <(prefix_bytes data/.dmfs/objects/)
	t0=$(now)
	out=$("$DMFS" snapshot "$STORE" --id "$label" -o "$OPTS")
	t1=$(now)
	read -r _ after < <(prefix_bytes data/.dmfs/objects/)
	hashed=$(echo "$out" | sed -n 's/.*; \(.*\) read to hash/\1/p')
	man=$(echo "$out" | awk '/manifest/ {print $2}')
	msize=$(s3_aws s3api head-object --bucket $B --key "data/.dmfs/manifests/sha256/$man" --query ContentLength --output text)
	ROWS+=("$(printf '%-28s %8s s  %14d  %14d  %10s  %s' "dmfs snapshot ($label)" "$(secs "$t0" "$t1")" \
		$((after - before)) "$msize" "${hashed:-0 B}" "$(echo "$out" | sed -n 's/^  \([0-9]* new objects.*stored\);.*/\1/p')")")
}
# old LABEL: the timestamp-prefix script, one row.
old() {
	local label=$1 t0 t1 n b
	t0=$(now)
	s3_aws s3 cp --recursive --quiet --only-show-errors "$W/tree" "s3://$B/backup-$label/" >/dev/null
	t1=$(now)
	read -r n b < <(prefix_bytes "backup-$label/")
	ROWS+=("$(printf '%-28s %8s s  %14d  %14s  %10s  %s' "aws s3 cp --recursive ($label)" "$(secs "$t0" "$t1")" "$b" - - "$n objects uploaded")")
}

log "snapshots: first, unchanged, 1 % changed"
snap first
old first
snap unchanged
old unchanged
python3 - "$W/tree" "$NFILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(0, n, 100):   # 1 % of the files
    p = os.path.join(root, f"d{i % 100:02d}", f"f{i:06d}.bin")
    size = os.path.getsize(p)
    with open(p, "wb") as f:
        f.write(os.urandom(size))
PY
s3_aws s3 cp --recursive --quiet --only-show-errors "$W/tree" "$STORE/" >/dev/null
snap changed-1pct
old changed-1pct

echo
echo "Snapshots of $NFILES files / $MB_TOTAL MiB on $SERVER (bytes added = the server's listing of what the run stored)"
printf '%-28s %10s  %14s  %14s  %10s  %s\n' "what" "time" "bytes added" "manifest B" "read" "objects"
for r in "${ROWS[@]}"; do echo "$r"; done

# 2. Listing a large version through the mount, when the mount has it.
mkdir -p "$W/mnt"
"$DMFS" mount "$STORE" "$W/mnt" -o "$OPTS"
MOUNTS+=("$W/mnt")
if [ ! -d "$W/mnt/datasets" ]; then
	echo
	echo "listing: skipped (this dmfs does not show datasets/ in the mount)"
	exit 0
fi
fusermount3 -u "$W/mnt"
log "building a $NLIST-file version (one content object, a synthetic manifest)"
python3 - "$W" "$NLIST" <<'PY'
import hashlib, json, os, sys, time
w, n = sys.argv[1], int(sys.argv[2])
content = b"x" * 100
h = hashlib.sha256(content).hexdigest()
open(os.path.join(w, "obj"), "wb").write(content)
dirs = {}
lines = []
paths = sorted(f"d{i % 1000:03d}/s{(i // 1000) % 10}/f{i:07d}.bin" for i in range(n))
for p in paths:
    top = p.split("/")[0]
    d = dirs.setdefault(top, {"files": 0, "bytes": 0})
    d["files"] += 1; d["bytes"] += len(content)
head = {"dmfs_manifest": 1, "kind": "dataset", "name": "big", "version": "v1",
        "created": int(time.time()), "author": "bench", "files": n,
        "bytes": n * len(content), "dirs": dirs}
with open(os.path.join(w, "manifest"), "w") as f:
    f.write(json.dumps(head, separators=(",", ":")) + "\n")
    for p in paths:
        f.write(json.dumps({"path": p, "size": len(content), "mode": 420,
                            "mtime": 1700000000, "sha256": h},
                           separators=(",", ":")) + "\n")
mh = hashlib.sha256(open(os.path.join(w, "manifest"), "rb").read()).hexdigest()
open(os.path.join(w, "manifest.hash"), "w").write(mh)
open(os.path.join(w, "obj.hash"), "w").write(h)
json.dump({"manifest": mh, "writer": "bench", "header": head}, open(os.path.join(w, "ref"), "w"))
PY
oh=$(cat "$W/obj.hash") mh=$(cat "$W/manifest.hash")
s3_aws s3 cp --quiet "$W/obj" "s3://$B/data/.dmfs/objects/sha256/${oh:0:2}/${oh:2}"
s3_aws s3 cp --quiet "$W/manifest" "s3://$B/data/.dmfs/manifests/sha256/$mh"
s3_aws s3 cp --quiet "$W/ref" "s3://$B/data/.dmfs/refs/datasets/big/v1"
rm -rf "$W/cache"
"$DMFS" mount "$STORE" "$W/mnt" -o "$OPTS"
pid=$(pgrep -n -f "dmfs mount $STORE $W/mnt")
LROWS=()
# cold: nothing indexed on this machine, kernel caches dropped;
# warm: the manifest indexed, kernel caches dropped;
# hot: the kernel's dentry and attribute caches kept too.
for pass in cold warm hot; do
	[ "$pass" = hot ] || drop
	t0=$(now); n=$(find "$W/mnt/datasets/big/v1" | wc -l); t1=$(now)
	[ "$pass" = hot ] || drop
	t2=$(now); ls -lR "$W/mnt/datasets/big/v1" >/dev/null; t3=$(now)
	LROWS+=("$(printf '%-6s find %8s s (%d entries)   ls -lR %8s s' "$pass" "$(secs "$t0" "$t1")" "$n" "$(secs "$t2" "$t3")")")
done
rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
anon=$(awk '/RssAnon/ {print $2}' "/proc/$pid/status")
file=$(awk '/RssFile/ {print $2}' "/proc/$pid/status")
echo
echo "A $NLIST-file version through the mount ($SERVER)"
for r in "${LROWS[@]}"; do echo "$r"; done
echo "peak RSS of dmfs: $((rss / 1024)) MiB (now: $((anon / 1024)) MiB anonymous, $((file / 1024)) MiB mapped index pages)"
