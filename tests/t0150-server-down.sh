#!/bin/bash
# t0150-server-down: with the S3 server stopped, files already cached still
# read byte-exact (listings are served stale, blocks from the cache); a
# file that was never read fails with EIO after the bounded retries
# instead of hanging.
. "$(dirname "$0")/lib/common.sh"

SRC=$T_ROOT/src
mkdir -p "$SRC/d"
t_make_file "$SRC/d/cached.bin" 7000000 cached
t_make_file "$SRC/d/cold.bin" 3000000 cold
echo small >"$SRC/small.txt"

for kind in $(t_backends); do
	[ "$kind" = file ] && continue
	t_backend_start "$kind"
	t_put_tree "$SRC"
	M=$T_ROOT/mnt
	t_mount "$M" stat_ttl=1 retries=2 retry_max_ms=300 connect_timeout_ms=1000
	cmp "$M/live/d/cached.bin" "$SRC/d/cached.bin" || t_fail "first read"
	cmp "$M/live/small.txt" "$SRC/small.txt" || t_fail "first read small"
	ls -l "$M/live/d" >/dev/null
	s3server_kill_frontend
	sleep 2 # listings are now past their TTL
	T_ALLOW_ERRORS=1
	echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
	start=$SECONDS
	cmp "$M/live/d/cached.bin" "$SRC/d/cached.bin" || t_fail "cached file with the server down"
	cmp "$M/live/small.txt" "$SRC/small.txt" || t_fail "cached small file with the server down"
	if timeout 60 cat "$M/live/d/cold.bin" >/dev/null 2>"$T_ROOT/err"; then
		t_fail "uncached file read with the server down"
	fi
	grep -q "Input/output error" "$T_ROOT/err" || t_fail "uncached read: $(cat "$T_ROOT/err")"
	[ $((SECONDS - start)) -le 30 ] || t_fail "server-down reads took $((SECONDS - start)) s"
	[ "$(t_status "$M" s3.errors)" -gt 0 ] || t_fail "errors not counted"
	t_umount "$M"
	t_log_reset
	T_ALLOW_ERRORS=0
	t_backend_stop
done
t_done
