#!/bin/bash
# t0120-corrupt-block: a cached block damaged on disk (a byte flipped in
# LMDB's data file) is detected by its checksum, dropped and fetched
# again: the read is still byte-exact and .dmfs/status counts it.
. "$(dirname "$0")/lib/common.sh"

SRC=$T_ROOT/src
mkdir -p "$SRC"
t_make_file "$SRC/f.bin" 6000000 corrupt

for kind in $(t_backends); do
	t_backend_start "$kind"
	t_put_tree "$SRC"
	M=$T_ROOT/mnt
	t_mount "$M"
	cmp "$M/live/f.bin" "$SRC/f.bin" || t_fail "first read"
	t_umount "$M"
	t_wait_dmfs_exit

	# Flip one byte of the third 1 MiB block where it sits in data.mdb.
	python3 - "$T_ROOT/cache/data.mdb" "$SRC/f.bin" <<'PY' || t_fail "could not corrupt the cache"
import sys
db, src = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
needle = data[2 * 1048576 + 1000: 2 * 1048576 + 1064]
with open(db, "r+b") as f:
    buf = f.read()
    at = buf.find(needle)
    if at < 0:
        sys.exit("block not found in the cache file")
    f.seek(at + 10)
    f.write(bytes([buf[at + 10] ^ 0xFF]))
PY
	T_ALLOW_ERRORS=1
	t_mount "$M"
	echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
	cmp "$M/live/f.bin" "$SRC/f.bin" || t_fail "read after corruption differs"
	[ "$(t_status "$M" cache.corrupt)" -ge 1 ] || t_fail "corruption not counted"
	[ "$(t_status "$M" s3.bytes_fetched)" -gt 0 ] || t_fail "corrupt block not refetched"
	grep -q "checksum mismatch" "$T_LOG" || t_fail "no log line about the bad block"
	# And the refetched block is good from now on.
	t_umount "$M"
	t_mount "$M"
	cmp "$M/live/f.bin" "$SRC/f.bin" || t_fail "third read differs"
	[ "$(t_status "$M" cache.corrupt)" = 0 ] || t_fail "still corrupt after refetch"
	T_ALLOW_ERRORS=0
	t_log_reset
	t_backend_stop
done
t_done
