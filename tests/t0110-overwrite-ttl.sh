#!/bin/bash
# t0110-overwrite-ttl: an object overwritten by another client (awscli, or
# a new file in a file:// store) is read fresh once the listing TTL has
# passed - never a mix of old and new bytes; a new object appears and a
# deleted one disappears after the TTL.
. "$(dirname "$0")/lib/common.sh"

SRC=$T_ROOT/src
mkdir -p "$SRC/d"
t_make_file "$SRC/d/obj.bin" 3000000 old
t_make_file "$T_ROOT/new.bin" 5000000 new
echo gone >"$SRC/d/gone.txt"

for kind in $(t_backends); do
	t_backend_start "$kind"
	t_put_tree "$SRC"
	M=$T_ROOT/mnt
	t_mount "$M" stat_ttl=1
	cmp "$M/live/d/obj.bin" "$SRC/d/obj.bin" || t_fail "first read"
	old_etag=$(getfattr --only-values -n dmfs.etag "$M/live/d/obj.bin" 2>/dev/null)

	t_put_file "$T_ROOT/new.bin" d/obj.bin
	t_put_file "$T_ROOT/new.bin" d/added.bin
	case $kind in
	file) rm "$T_STORE_DIR/d/gone.txt" ;;
	*) s3_aws s3 rm --quiet "s3://$T_BUCKET/data/d/gone.txt" ;;
	esac
	sleep 2.5 # past stat_ttl (and the kernel's attribute timeout)

	cmp "$M/live/d/obj.bin" "$T_ROOT/new.bin" || t_fail "overwritten object read stale"
	[ "$(stat -c %s "$M/live/d/obj.bin")" = 5000000 ] || t_fail "size not refreshed"
	new_etag=$(getfattr --only-values -n dmfs.etag "$M/live/d/obj.bin" 2>/dev/null)
	[ "$new_etag" != "$old_etag" ] || t_fail "ETag did not change"
	cmp "$M/live/d/added.bin" "$T_ROOT/new.bin" || t_fail "new object not visible"
	[ ! -e "$M/live/d/gone.txt" ] || t_fail "deleted object still visible"
	t_backend_stop
done
t_done
