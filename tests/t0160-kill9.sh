#!/bin/bash
# t0160-kill9: a mount killed with SIGKILL in the middle of reading leaves
# a cache the next mount opens (stale LMDB reader slots are cleared) with
# every block it had committed still good.
. "$(dirname "$0")/lib/common.sh"

SRC=$T_ROOT/src
mkdir -p "$SRC"
t_make_file "$SRC/a.bin" 20000000 killa
t_make_file "$SRC/b.bin" 30000000 killb

for kind in $(t_backends); do
	t_backend_start "$kind"
	t_put_tree "$SRC"
	M=$T_ROOT/mnt
	t_mount "$M"
	cmp "$M/live/a.bin" "$SRC/a.bin" || t_fail "first read"
	pid=$(t_status "$M" pid)
	# Kill it while a reader is busy.
	(cat "$M/live/b.bin" >/dev/null 2>&1 &)
	sleep 0.2
	kill -9 "$pid"
	sleep 0.5
	fusermount3 -u -z "$M" 2>/dev/null || true
	t_mount "$M" debug
	grep -q "stale reader slot(s) cleared" "$T_LOG" || t_fail "no reader check at open"
	echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
	cmp "$M/live/a.bin" "$SRC/a.bin" || t_fail "a.bin after kill -9"
	cmp "$M/live/b.bin" "$SRC/b.bin" || t_fail "b.bin after kill -9"
	[ "$(t_status "$M" cache.corrupt)" = 0 ] || t_fail "corrupt blocks after kill -9"
	t_backend_stop
done
t_done
