#!/bin/bash
# t0185-virtual-hosted: with path_style=0 requests go to BUCKET.HOST
# (virtual-hosted addressing, as on AWS), signed for that host; the
# default for an IP endpoint is path style.  RGW is set up with
# "rgw dns name = localhost", and *.localhost resolves to 127.0.0.1.
. "$(dirname "$0")/lib/common.sh"

echo "vhost" >"$T_ROOT/v.txt"
for kind in $(t_backends); do
	[ "$kind" = rgw ] || continue
	t_backend_start "$kind"
	t_put_file "$T_ROOT/v.txt" v/v.txt
	M=$T_ROOT/mnt
	T_MOUNT_OPTS="endpoint=http://localhost:$S3_PORT"
	t_mount "$M" path_style=0 debug
	[ "$(cat "$M/live/v/v.txt")" = vhost ] || t_fail "read with virtual-hosted addressing"
	grep -q "S3 GET data/v/v.txt (host $T_BUCKET.localhost:$S3_PORT): HTTP 206" "$T_LOG" ||
		t_fail "GET was not virtual-hosted: $(grep 'S3 GET' "$T_LOG" | head -2)"
	t_umount "$M"
	t_wait_dmfs_exit
	t_log_reset
	rm -rf "$T_ROOT/cache" # so the next read must GET
	T_MOUNT_OPTS="endpoint=http://127.0.0.1:$S3_PORT"
	t_mount "$M" debug
	[ "$(cat "$M/live/v/v.txt")" = vhost ] || t_fail "read with path style"
	grep -q "S3 GET data/v/v.txt (host 127.0.0.1:$S3_PORT): HTTP 206" "$T_LOG" ||
		t_fail "an IP endpoint did not default to path style"
	t_umount "$M"
	T_MOUNT_OPTS=
	t_backend_stop
done
t_done
