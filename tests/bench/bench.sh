#!/bin/bash
# tests/bench/bench.sh - dmfs against s3fs and rclone on the same bucket of
# the same S3 server, in one run.  Not part of `make check`.
#
#   bash tests/bench/bench.sh [--server rgw|s3rver] [--latency MS]
#                             [--big-mb N] [--small N] [--tree N]
#
# For each of dmfs, s3fs (default options), s3fs -o use_cache and
# rclone mount --vfs-cache-mode full it measures:
#   cold sequential read of a 1 GiB file (MB/s, page cache dropped first);
#   warm re-read in the same mount (each tool's caches as it keeps them,
#   the kernel page cache included);
#   read after a remount with the page cache dropped (the tool's own
#   persistent cache: dmfs's LMDB, s3fs's use_cache files, rclone's VFS
#   cache; s3fs without use_cache reads from the server again);
#   ls -lR of 10 000 objects in 100 directories (s, caches dropped);
#   reading 2 000 files of 256 KiB in random order with 8 threads, cold
#   and warm (s);
# plus two ceilings: the same 1 GiB read from local disk, and 8 parallel
# ranged GETs with curl straight from the server.  --latency MS puts tests/tools/delay_proxy in
# front of the server: every response is delayed MS ms (round trip), as a
# far-away S3 would be.  Needs root (drop_caches, FUSE) and the packages
# of tests/setup-deps.sh.  Prints a table and the dmfs/peer ratios.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
DMFS=${DMFS:-$SRC/dmfs}
SERVER=rgw LATENCY=0 BIG_MB=1024 NSMALL=2000 NTREE=10000
. "$HERE/lib.sh"
bench_args --server=SERVER --latency=LATENCY --big-mb=BIG_MB --small=NSMALL --tree=NTREE -- "$@"

bench_workdir dmfs-bench
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }

log "starting $SERVER"
bench_server_start
B=bench
s3_aws s3 mb s3://$B >/dev/null
bench_aws_parallel

log "making and uploading the data set"
mkdir -p "$W/data/tree" "$W/data/small"
head -c $((BIG_MB << 20)) /dev/urandom >"$W/data/big.bin"
python3 - "$W/data" "$NTREE" "$NSMALL" <<'PY'
import os, sys
root, ntree, nsmall = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(ntree):
    d = os.path.join(root, "tree", f"d{i % 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"o{i:05d}"), "wb") as f:
        f.write(os.urandom(64))
for i in range(nsmall):
    d = os.path.join(root, "small", f"s{i % 20:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:04d}.bin"), "wb") as f:
        f.write(os.urandom(256 * 1024))
PY
s3_aws s3 cp --recursive --quiet --only-show-errors "$W/data" "s3://$B/" ||
	{ log "upload failed"; exit 1; }
(cd "$W/data/small" && find . -type f | sort) >"$W/small.list"

# Ceilings.
drop
t0=$(now); cat "$W/data/big.bin" >/dev/null; t1=$(now)
LOCAL=$(python3 -c "print(f'{$BIG_MB*1048576/1e6/($t1-$t0):.0f}')")
seg=$(((BIG_MB << 20) / 8))
t0=$(now)
cpids=()
for i in 0 1 2 3 4 5 6 7; do
	curl -s --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "Range: bytes=$((i * seg))-$(((i + 1) * seg - 1))" \
		"$ENDPOINT/$B/big.bin" -o /dev/null &
	cpids+=($!)
done
wait "${cpids[@]}" # not a bare wait: the proxy is a child too
t1=$(now)
CURL=$(python3 -c "print(f'{$BIG_MB*1048576/1e6/($t1-$t0):.0f}')")
log "ceilings: local disk $LOCAL MB/s, 8 parallel ranged GETs $CURL MB/s"

bench_s3fs_passwd

# mount_TOOL MNT: mount the bucket at MNT with that tool.
mount_dmfs() {
	"$DMFS" mount "s3://$B" "$1" -o "endpoint=$ENDPOINT,cache_dir=$W/cache.dmfs,cache_size=20G,view=live"
}
mount_s3fs() {
	s3fs "$B" "$1" -o "url=$ENDPOINT,use_path_request_style,passwd_file=$W/passwd"
}
mount_s3fs_cache() {
	mkdir -p "$W/cache.s3fs"
	s3fs "$B" "$1" -o "url=$ENDPOINT,use_path_request_style,passwd_file=$W/passwd,use_cache=$W/cache.s3fs"
}
mount_rclone() { bench_mount_rclone "$1" full; }

declare -A R
mbps() { python3 -c "print(f'{$BIG_MB*1048576/1e6/($2-$1):.0f}')"; }
measure() {
	local tool=$1 m=$W/mnt.$1 t0 t1 out
	mkdir -p "$m"
	"mount_${tool//-/_}" "$m" || { log "$tool: mount failed"; return 0; }
	MOUNTS+=("$m")
	ls "$m" >/dev/null
	# 1 GiB: cold; warm in the same mount (each tool's caches as it keeps
	# them, kernel page cache included); warm after a remount with the
	# page cache dropped (the tool's own persistent cache only).
	drop; t0=$(now); cat "$m/big.bin" >/dev/null; t1=$(now)
	R[$tool.cold]=$(mbps "$t0" "$t1")
	t0=$(now); cat "$m/big.bin" >/dev/null; t1=$(now)
	R[$tool.warm]=$(mbps "$t0" "$t1")
	fusermount3 -u "$m"
	"mount_${tool//-/_}" "$m" || { log "$tool: remount failed"; return 0; }
	ls "$m" >/dev/null
	drop; t0=$(now); cat "$m/big.bin" >/dev/null; t1=$(now)
	R[$tool.remount]=$(mbps "$t0" "$t1")
	drop; t0=$(now); ls -lR "$m/tree" >/dev/null; t1=$(now)
	R[$tool.ls]=$(secs "$t0" "$t1")
	sed "s|^\.|$m/small|" "$W/small.list" >"$W/list.$tool"
	drop; out=$(python3 "$HERE/randread.py" "$W/list.$tool" 8)
	R[$tool.small_cold]=${out%% *}
	out=$(python3 "$HERE/randread.py" "$W/list.$tool" 8)
	R[$tool.small_warm]=${out%% *}
	fusermount3 -u "$m"
	log "$tool: cold ${R[$tool.cold]} MB/s, warm ${R[$tool.warm]} MB/s, after remount ${R[$tool.remount]} MB/s, ls -lR ${R[$tool.ls]} s, small cold ${R[$tool.small_cold]} s, warm ${R[$tool.small_warm]} s"
}
TOOLS=(dmfs s3fs s3fs-cache rclone)
for t in "${TOOLS[@]}"; do measure "$t"; done

echo
echo "dmfs benchmark: server $SERVER, latency +${LATENCY} ms, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo "command: tests/bench/bench.sh --server $SERVER --latency $LATENCY --big-mb $BIG_MB --small $NSMALL --tree $NTREE"
echo "ceilings: local disk read $LOCAL MB/s; 8 parallel ranged GETs (curl) $CURL MB/s"
echo
printf '| %-11s | %9s | %9s | %13s | %8s | %12s | %12s |\n' tool "cold MB/s" "warm MB/s" "remount MB/s" "ls -lR s" "small cold s" "small warm s"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------- ----------- ----------- --------------- ---------- -------------- --------------
for t in "${TOOLS[@]}"; do
	printf '| %-11s | %9s | %9s | %13s | %8s | %12s | %12s |\n' "$t" "${R[$t.cold]:--}" "${R[$t.warm]:--}" \
		"${R[$t.remount]:--}" "${R[$t.ls]:--}" "${R[$t.small_cold]:--}" "${R[$t.small_warm]:--}"
done
echo
echo "ratios (dmfs / peer; > 1 means dmfs is faster):"
ratio() { python3 -c "a,b='$1','$2'
print('-' if '-' in (a,b) or not a or not b else f'{float(a)/float(b):.2f}x')"; }
for t in s3fs s3fs-cache rclone; do
	printf '  vs %-10s cold %s, warm %s, after remount %s, ls -lR %s, small cold %s, small warm %s\n' "$t" \
		"$(ratio "${R[dmfs.cold]:-}" "${R[$t.cold]:-}")" "$(ratio "${R[dmfs.warm]:-}" "${R[$t.warm]:-}")" \
		"$(ratio "${R[dmfs.remount]:-}" "${R[$t.remount]:-}")" \
		"$(ratio "${R[$t.ls]:-}" "${R[dmfs.ls]:-}")" "$(ratio "${R[$t.small_cold]:-}" "${R[dmfs.small_cold]:-}")" \
		"$(ratio "${R[$t.small_warm]:-}" "${R[dmfs.small_warm]:-}")"
done
printf '  vs ceilings: cold = %s of the parallel-GET ceiling, %s of local disk\n' \
	"$(ratio "${R[dmfs.cold]:-}" "$CURL")" "$(ratio "${R[dmfs.cold]:-}" "$LOCAL")"
