#!/bin/bash
# t0130-cache-size: cache_size holds - reading far more than the limit
# evicts least recently used blocks and the cache stays under it, while
# every byte read is still right.
. "$(dirname "$0")/lib/common.sh"

SRC=$T_ROOT/src
mkdir -p "$SRC"
for i in 1 2 3 4 5; do t_make_file "$SRC/f$i.bin" 6000000 "size$i"; done

for kind in $(t_backends); do
	t_backend_start "$kind"
	t_put_tree "$SRC"
	M=$T_ROOT/mnt
	t_mount "$M" cache_size=8M
	for i in 1 2 3 4 5; do
		cmp "$M/live/f$i.bin" "$SRC/f$i.bin" || t_fail "f$i differs"
	done
	sleep 1.5 # let the cache writer commit and evict
	cmp "$M/live/f5.bin" "$SRC/f5.bin" || t_fail "f5 differs"
	sleep 1.5
	bytes=$(t_status "$M" cache.bytes)
	limit=$(t_status "$M" cache.limit)
	ev=$(t_status "$M" cache.evictions)
	t_log "cache bytes $bytes of limit $limit, $ev evictions"
	[ "$limit" = 8388608 ] || t_fail "limit $limit"
	[ "$bytes" -le "$limit" ] || t_fail "cache holds $bytes > $limit"
	[ "$ev" -gt 0 ] || t_fail "nothing evicted"
	t_backend_stop
done
t_done
