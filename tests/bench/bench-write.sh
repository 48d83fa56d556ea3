#!/bin/bash
# tests/bench/bench-write.sh - write throughput of dmfs against s3fs and
# rclone on the same bucket of the same S3 server, in one run.  Not part
# of `make check`.
#
#   bash tests/bench/bench-write.sh [--server rgw|s3rver] [--latency MS]
#                                   [--big-mb N] [--small N] [--runs N]
#
# For each of dmfs (view=live), s3fs (default options) and
# rclone mount --vfs-cache-mode writes it measures:
#   one big file (1 GiB by default): `cp` from local disk into a fresh
#   mount, timed until cp (and so close) returns, then checked with
#   `s3api head-object` (size in the bucket); --runs times (3), the tools
#   taking turns, the median counting;
#   2 000 files of 256 KiB in 20 directories: `cp -r` of a local tree.
# dmfs and s3fs upload on close, so cp returning means the data is in
# the bucket.  rclone's writes mode uploads after close, in the
# background: its time runs until every object is in the bucket with
# its full size (polled with awscli), so all three times mean the same.
# Each tool writes under its own prefix of one bucket.  --latency MS puts
# tests/tools/delay_proxy in front of the server, as bench.sh does.
# The rgw of tests/lib/s3server.sh keeps its OSD in memory, 3 GiB for the
# tests; the default sizes (a ceiling upload plus 3 x 1.5 GiB, and rgw
# frees deleted objects only later) would fill that ("full status
# failsafe engaged") and uploads would hang, so this script gives it
# 12 GiB unless DMFS_RGW_MEMSTORE_BYTES says otherwise.
# Needs root (drop_caches, FUSE) and the packages of tests/setup-deps.sh.
# Prints a table and the dmfs/peer ratios from the times (> 1 means dmfs
# is faster).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
DMFS=${DMFS:-$SRC/dmfs}
SERVER=rgw LATENCY=0 BIG_MB=1024 NSMALL=2000 RUNS=3
. "$HERE/lib.sh"
bench_args --server=SERVER --latency=LATENCY --big-mb=BIG_MB --small=NSMALL --runs=RUNS -- "$@"

bench_workdir dmfs-bench-write

export DMFS_RGW_MEMSTORE_BYTES=${DMFS_RGW_MEMSTORE_BYTES:-$((12 << 30))}
log "starting $SERVER"
bench_server_start
B=bench
s3_aws s3 mb s3://$B >/dev/null

log "making the local data set"
mkdir -p "$W/data/small"
head -c $((BIG_MB << 20)) /dev/urandom >"$W/data/big.bin"
python3 - "$W/data" "$NSMALL" <<'PY'
import os, sys
root, nsmall = sys.argv[1], int(sys.argv[2])
for i in range(nsmall):
    d = os.path.join(root, "small", f"s{i % 20:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:04d}.bin"), "wb") as f:
        f.write(os.urandom(256 * 1024))
PY
BIG_BYTES=$((BIG_MB << 20))
SMALL_BYTES=$((NSMALL * 256 * 1024))

# Ceiling: the same big file uploaded with awscli (multipart, parallel).
drop
t0=$(now)
s3_aws s3 cp --quiet --only-show-errors "$W/data/big.bin" "s3://$B/ceiling/big.bin"
t1=$(now)
CEIL=$(python3 -c "print(f'{$BIG_BYTES/1e6/($t1-$t0):.0f}')")
s3_aws s3 rm --quiet --recursive "s3://$B/ceiling/" >/dev/null
log "ceiling: awscli s3 cp of the big file $CEIL MB/s"

bench_s3fs_passwd

# mount_TOOL MNT: mount the bucket at MNT with that tool.
mount_dmfs() {
	"$DMFS" mount "s3://$B" "$1" -o "endpoint=$ENDPOINT,cache_dir=$W/cache.dmfs,cache_size=20G,view=live"
}
mount_s3fs() {
	s3fs "$B" "$1" -o "url=$ENDPOINT,use_path_request_style,passwd_file=$W/passwd"
}
mount_rclone() { bench_mount_rclone "$1" writes; }

# count_size PREFIX: "objects bytes" under PREFIX in the bucket, not
# counting directory markers (keys ending in /, which dmfs and s3fs make).
# JSON output: awscli applies the query to the whole listing then, where
# text output applies it page by page.
count_size() {
	s3_aws s3api list-objects-v2 --bucket "$B" --prefix "$1" \
		--query "[length(Contents[?!ends_with(Key, '/')] || \`[]\`), sum(Contents[?!ends_with(Key, '/')].Size || \`[0]\`)]" \
		--output json | tr -d '[],\n'
}
# wait_landed PREFIX N BYTES: poll until N objects of BYTES in total are
# under PREFIX (an upload that finishes after close, as rclone's does).
wait_landed() {
	local i got
	for i in $(seq 3000); do
		got=$(count_size "$1" 2>/dev/null || echo "0 0")
		[ "$(echo $got)" = "$2 $3" ] && return 0
		sleep 0.2
	done
	log "timeout: under $1 have $got, want $2 $3"
	return 1
}
head_size() {
	s3_aws s3api head-object --bucket "$B" --key "$1" --query ContentLength --output text
}

declare -A R
mbps() { python3 -c "print(f'{$3/1e6/($2-$1):.0f}')"; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "$@"; }

# mount_fresh TOOL: the bucket mounted with TOOL at MNT=$W/mnt.TOOL; MNT
# empty when the mount failed.
mount_fresh() {
	MNT=$W/mnt.$1
	mkdir -p "$MNT"
	"mount_$1" "$MNT" || { log "$1: mount failed"; MNT=; return 0; }
	MOUNTS+=("$MNT")
	mkdir -p "$MNT/$1"
}
umount_tool() { fusermount3 -u "$1" || fusermount3 -uz "$1" || true; }

# big_run TOOL RUN: one timed cp of the big file (page cache dropped, so
# every tool reads its source from disk alike) into a fresh mount; the
# seconds are appended to R[TOOL.big_runs], "bad" when the bucket does
# not hold the whole file.  The object is deleted afterwards.
big_run() {
	local tool=$1 key=$1/big.$2.bin m t0 t1 size
	mount_fresh "$tool"
	m=$MNT
	[ -n "$m" ] || return 0
	drop
	t0=$(now)
	if cp "$W/data/big.bin" "$m/$key" &&
		{ [ "$tool" != rclone ] || wait_landed "$key" 1 "$BIG_BYTES"; }; then
		t1=$(now)
		size=$(head_size "$key" || echo missing)
	else
		size="cp failed"
	fi
	if [ "$size" = "$BIG_BYTES" ]; then
		R[$tool.big_runs]+=" $(secs "$t0" "$t1")"
	else
		log "$tool: big file run $2: in the bucket $size, want $BIG_BYTES"
		R[$tool.big_runs]+=" bad"
	fi
	umount_tool "$m"
	s3_aws s3 rm --quiet "s3://$B/$key" >/dev/null || true
}

# small_run TOOL: cp -r of the small files into a fresh mount, timed until
# every object is in the bucket with its full size.
small_run() {
	local tool=$1 m t0 t1
	mount_fresh "$tool"
	m=$MNT
	[ -n "$m" ] || return 0
	drop
	t0=$(now)
	cp -r "$W/data/small" "$m/$tool/small" || { log "$tool: cp -r failed"; umount_tool "$m"; return 0; }
	[ "$tool" = rclone ] && { wait_landed "$tool/small/" "$NSMALL" "$SMALL_BYTES" || { umount_tool "$m"; return 0; }; }
	t1=$(now)
	sync
	# Every tool is checked the same way: all files, full size, in the bucket.
	if wait_landed "$tool/small/" "$NSMALL" "$SMALL_BYTES"; then
		R[$tool.small]=$(mbps "$t0" "$t1" "$SMALL_BYTES")
		R[$tool.small_s]=$(secs "$t0" "$t1")
	else
		R[$tool.small]=bad
	fi
	umount_tool "$m"
	log "$tool: small ${R[$tool.small]} MB/s (${R[$tool.small_s]:--} s)"
}

TOOLS=(dmfs s3fs rclone)
# The big file RUNS times per tool, the tools taking turns within each
# round (a server that slows down as it fills, as the in-memory RGW does,
# then slows every tool alike); the median run counts.
for run in $(seq "$RUNS"); do
	for t in "${TOOLS[@]}"; do big_run "$t" "$run"; done
done
for t in "${TOOLS[@]}"; do
	runs=${R[$t.big_runs]:-}
	if [ -z "$runs" ] || [[ $runs == *bad* ]]; then
		R[$t.big]=bad
	else
		R[$t.big_s]=$(median $runs)
		R[$t.big]=$(python3 -c "print(f'{$BIG_BYTES/1e6/${R[$t.big_s]}:.0f}')")
	fi
	log "$t: big file runs (s):$runs; median ${R[$t.big_s]:--} s"
done
for t in "${TOOLS[@]}"; do small_run "$t"; done

echo
echo "dmfs write benchmark: server $SERVER, latency +${LATENCY} ms, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo "command: tests/bench/bench-write.sh --server $SERVER --latency $LATENCY --big-mb $BIG_MB --small $NSMALL --runs $RUNS"
for t in "${TOOLS[@]}"; do echo "big file runs, $t (s):${R[$t.big_runs]:-}"; done
echo "ceiling: awscli s3 cp of the big file $CEIL MB/s"
echo
printf '| %-7s | %12s | %14s | %16s | %11s |\n' tool "big MB/s" "big s (median)" "${NSMALL}x256K MB/s" "small s"
printf '|%s|%s|%s|%s|%s|\n' --------- -------------- ---------------- ------------------ -------------
for t in "${TOOLS[@]}"; do
	printf '| %-7s | %12s | %14s | %16s | %11s |\n' "$t" "${R[$t.big]:--}" "${R[$t.big_s]:--}" \
		"${R[$t.small]:--}" "${R[$t.small_s]:--}"
done
echo
echo "ratios (dmfs / peer throughput = peer time / dmfs time, same bytes; > 1 means dmfs is faster; target >= 1.5x s3fs):"
# From the times, not the rounded MB/s (3 vs 1 MB/s would say 3x).
ratio() { python3 -c "a,b='$1','$2'
ok=lambda s: s not in ('', '-', 'bad')
print(f'{float(b)/float(a):.2f}x' if ok(a) and ok(b) else '-')"; }
for t in s3fs rclone; do
	printf '  vs %-7s big %s, small %s\n' "$t" \
		"$(ratio "${R[dmfs.big_s]:-}" "${R[$t.big_s]:-}")" "$(ratio "${R[dmfs.small_s]:-}" "${R[$t.small_s]:-}")"
done
