#!/bin/bash
# tests/bench/bench-meta.sh - what metadata and queries cost.  Not part of
# `make check`.
#
#   bash tests/bench/bench-meta.sh [--rows N (0: skip part 1)] [--xattr-files N] [--server rgw|s3rver]
#                                  [--latency MS]
#
# 1. A file:// store of --rows empty files (default 1 000 000, in 1 000
#    directories) and a JSON Lines file labelling every one with 8 fields
#    (id int, score float, rare int 0-99, split string, label string of 20,
#    ok bool, note string, weight float).  Timed:
#      import with `dmfs meta import` (a fresh store and cache), and by
#      `cp` into the mount's DIR/.dmfs.meta (another fresh store and cache),
#      in rows per second;
#      a selective query (`rare == 7`, ~1 %) and a broad one
#      (`score < 0.5`, ~50 %) with `dmfs query` (paths out), and the same
#      SELECTs in SQLite (Python's sqlite3 module) on the same rows with an
#      index on the queried field, in the same run; and both queries again
#      with DMFS_QUERY_INDEX=0 (the walk, without dmfs's field index);
#      `ls -R` of a query directory of 10 000 matches (first listing, which
#      runs the query, and a second one).
# 2. setfattr on --xattr-files files (default 10 000) through dmfs and
#    through s3fs -o use_xattr (which rewrites each object) on the same
#    bucket of the same S3 server (--server, default s3rver); --latency MS
#    puts tests/tools/delay_proxy in front of it (every response MS ms
#    later, as a far-away S3 would answer).  0: skip part 2.
# Prints a table and the ratios.  Needs root and tests/setup-deps.sh's
# packages.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
DMFS=${DMFS:-$SRC/dmfs}
ROWS=1000000 NX=10000 SERVER=s3rver LATENCY=0
. "$HERE/lib.sh"
bench_args --rows=ROWS --xattr-files=NX --server=SERVER --latency=LATENCY -- "$@"

bench_workdir dmfs-bench-meta
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
rate() { python3 -c "print(f'{$1 / ($3 - $2):,.0f}')"; }

if [ "$ROWS" -gt 0 ]; then
log "making a store of $ROWS files and their labels"
python3 - "$W/store-a" "$ROWS" "$W/labels.jsonl" <<'PY'
import json, os, random, sys
root, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
random.seed(1)
labels = ["l%02d" % i for i in range(20)]
with open(out, "w") as f:
    for i in range(n):
        d = "d%03d" % (i % 1000)
        p = "%s/f%07d.dat" % (d, i)
        if i < 1000:
            os.makedirs(os.path.join(root, d), exist_ok=True)
        os.close(os.open(os.path.join(root, p), os.O_CREAT | os.O_WRONLY, 0o644))
        f.write(json.dumps({"path": p, "id": i, "score": random.random(),
                            "rare": random.randrange(100), "split": random.choice(("train", "val", "test")),
                            "label": random.choice(labels), "ok": random.random() < 0.5,
                            "note": "n%d" % (i % 977), "weight": random.random() * 10}) + "\n")
PY
cp -al "$W/store-a" "$W/store-b"

log "import: dmfs meta import"
t0=$(now)
"$DMFS" meta import "file://$W/store-a" "$W/labels.jsonl" -o "cache_dir=$W/cache-a" >/dev/null
t1=$(now)
IMP_CLI=$(secs "$t0" "$t1") IMP_CLI_R=$(rate "$ROWS" "$t0" "$t1")

log "import: cp into the mount's .dmfs.meta"
mkdir -p "$W/mnt"
"$DMFS" mount "file://$W/store-b" "$W/mnt" -o "cache_dir=$W/cache-b"
MOUNTS+=("$W/mnt")
t0=$(now)
cp "$W/labels.jsonl" "$W/mnt/live/.dmfs.meta"
t1=$(now)
IMP_MNT=$(secs "$t0" "$t1") IMP_MNT_R=$(rate "$ROWS" "$t0" "$t1")
fusermount3 -u "$W/mnt"

# dq EXPR: seconds for `dmfs query` (the paths go to $W/hits)
dq() {
	local t0 t1
	t0=$(now)
	"$DMFS" query "file://$W/store-a" "$1" -o "cache_dir=$W/cache-a" >"$W/hits"
	t1=$(now)
	secs "$t0" "$t1"
}
log "queries: dmfs"
Q1=$(dq 'rare == 7'); N1=$(wc -l <"$W/hits")
Q2=$(dq 'score < 0.5'); N2=$(wc -l <"$W/hits")
# the same without the field index (the walk of every file)
Q1W=$(DMFS_QUERY_INDEX=0 dq 'rare == 7')
Q2W=$(DMFS_QUERY_INDEX=0 dq 'score < 0.5')

log "queries: SQLite with an index on the queried field"
read -r S1 S2 SN1 SN2 SLOAD < <(python3 - "$W/labels.jsonl" "$W/sqlite.db" <<'PY'
import json, sqlite3, sys, time
db = sqlite3.connect(sys.argv[2])
db.execute("create table t (path text primary key, id int, score real, rare int, split text, label text, ok int, note text, weight real)")
t0 = time.time()
with open(sys.argv[1]) as f:
    db.executemany("insert into t values (?,?,?,?,?,?,?,?,?)",
                   ((r["path"], r["id"], r["score"], r["rare"], r["split"], r["label"], int(r["ok"]), r["note"], r["weight"])
                    for r in map(json.loads, f)))
db.execute("create index t_rare on t(rare)")
db.execute("create index t_score on t(score)")
db.commit()
load = time.time() - t0
def q(sql):
    t0 = time.time()
    rows = db.execute(sql).fetchall()
    with open("/dev/null", "w") as out:
        out.write("\n".join(r[0] for r in rows))
    return time.time() - t0, len(rows)
s1, n1 = q("select path from t where rare = 7 order by path")
s2, n2 = q("select path from t where score < 0.5 order by path")
print(f"{s1:.3f} {s2:.3f} {n1} {n2} {load:.1f}")
PY
)
[ "$SN1" = "$N1" ] || log "warning: SQLite matched $SN1 rows for rare == 7, dmfs $N1"
[ "$SN2" = "$N2" ] || log "warning: SQLite matched $SN2 rows for score < 0.5, dmfs $N2"

log "ls -R of a query directory of 10 000 matches"
"$DMFS" mount "file://$W/store-a" "$W/mnt" -o "cache_dir=$W/cache-a"
MOUNTS+=("$W/mnt")
mkdir "$W/mnt/queries/tenk"
echo "id < 10000" >"$W/mnt/queries/tenk/.query"
t0=$(now); n=$(ls -R "$W/mnt/queries/tenk" | grep -c '\.dat$'); t1=$(now)
LS1=$(secs "$t0" "$t1")
t0=$(now); ls -R "$W/mnt/queries/tenk" >/dev/null; t1=$(now)
LS2=$(secs "$t0" "$t1")
[ "$n" = 10000 ] || log "warning: the query directory listed $n files"
fusermount3 -u "$W/mnt"

fi

ratio() { python3 -c "print(f'{$1 / $2:.1f}x')"; }
if [ "$NX" -gt 0 ]; then
log "setfattr on $NX files: dmfs vs s3fs -o use_xattr on $SERVER"
bench_server_start
B=benchmeta
s3_aws s3 mb s3://$B >/dev/null
bench_aws_parallel
python3 - "$W/xt" "$NX" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "x%02d" % (i % 50))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(1024))
PY
s3_aws s3 cp --recursive --quiet --only-show-errors "$W/xt" "s3://$B/" || { log "upload failed"; exit 1; }
(cd "$W/xt" && find . -type f | sed 's|^\./||' | sort) >"$W/xt.list"
bench_s3fs_passwd
mkdir -p "$W/m-dmfs" "$W/m-s3fs"
"$DMFS" mount "s3://$B" "$W/m-dmfs" -o "endpoint=$ENDPOINT,cache_dir=$W/cache-x,view=live"
MOUNTS+=("$W/m-dmfs")
s3fs "$B" "$W/m-s3fs" -o "url=$ENDPOINT,use_path_request_style,passwd_file=$W/passwd,use_xattr"
MOUNTS+=("$W/m-s3fs")
ls -R "$W/m-dmfs" >/dev/null
ls -R "$W/m-s3fs" >/dev/null
# setfattr MNT: label every file (one setfattr process per 500 files)
label() { (cd "$1" && xargs -n 500 setfattr -n user.label -v cat <"$W/xt.list"); }
t0=$(now); label "$W/m-dmfs"; echo refresh >"$W/m-dmfs/.dmfs/ctl"; t1=$(now)
XD=$(secs "$t0" "$t1")
t0=$(now); label "$W/m-s3fs"; t1=$(now)
XS=$(secs "$t0" "$t1")
[ "$(getfattr --only-values -n user.label "$W/m-dmfs/$(head -1 "$W/xt.list")")" = cat ] || log "warning: dmfs label not read back"

fi
if [ "$ROWS" -gt 0 ]; then cat <<EOF

metadata and queries, $ROWS rows x 8 fields (file:// store; SQLite in the same run)
  import, dmfs meta import           $IMP_CLI s   $IMP_CLI_R rows/s
  import, cp into .dmfs.meta         $IMP_MNT s   $IMP_MNT_R rows/s
  (SQLite load + 2 indexes           $SLOAD s)
  selective query, rare == 7         dmfs $Q1 s   SQLite (indexed) $S1 s   $N1 matches   dmfs/SQLite $(ratio "$Q1" "$S1")   (walk $Q1W s)
  broad query, score < 0.5           dmfs $Q2 s   SQLite (indexed) $S2 s   $N2 matches   dmfs/SQLite $(ratio "$Q2" "$S2")   (walk $Q2W s)
  ls -R of a 10 000-match query dir  first $LS1 s, again $LS2 s
EOF
fi
if [ "$NX" -gt 0 ]; then cat <<EOF
setfattr on $NX files ($SERVER, latency +$LATENCY ms)
  dmfs (incl. sending to the bucket) $XD s
  s3fs -o use_xattr                  $XS s   dmfs is $(ratio "$XS" "$XD") faster
EOF
fi
