#!/bin/bash
# t0100-read-tree: a tree of >= 1000 small files in nested directories and a
# >= 200 MiB file read through the mount equal the source (listing and
# every sha256); random reads equal; a second read comes from the cache;
# a remount keeps the cache; xattrs; .dmfs hidden; versions are EROFS;
# view=live; and the debug log holds no secret.
. "$(dirname "$0")/lib/common.sh"

SRC=$T_ROOT/src
BIG_MB=${DMFS_TEST_BIG_MB:-200}
python3 "$T_SRC/tests/lib/mktree.py" "$SRC" 1000 "$BIG_MB" || t_fail "mktree"
want_sums=$(t_tree_sums "$SRC")
want_list=$(cd "$SRC" && find . | sort)

drop_page_cache() {
	# Make the next read go to dmfs, not the kernel's page cache.
	sync
	echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

for kind in $(t_backends); do
	t_backend_start "$kind"
	t_put_tree "$SRC"
	M=$T_ROOT/mnt
	t_mount "$M" debug stat_ttl=30

	# Layout: live/, snapshots/, datasets/; .dmfs is hidden but opens by name.
	[ "$(ls -a "$M" | tr '\n' ' ')" = ". .. datasets live queries snapshots " ] || t_fail "root shows: $(ls -a "$M")"
	[ -r "$M/.dmfs/status" ] || t_fail ".dmfs/status is not readable"

	# The listing and every byte.
	got_list=$(cd "$M/live" && find . | sort)
	[ "$got_list" = "$want_list" ] ||
		t_fail "find differs: $(diff <(echo "$want_list") <(echo "$got_list") | head)"
	got_sums=$(t_tree_sums "$M/live")
	[ "$got_sums" = "$want_sums" ] ||
		t_fail "sha256 differs: $(diff <(echo "$want_sums") <(echo "$got_sums") | head)"
	t_log "$(echo "$want_list" | wc -l) names and every sha256 equal"

	# Random offsets and sizes.
	python3 "$T_SRC/tests/lib/randread.py" "$M/live/big.bin" "$SRC/big.bin" 300 ||
		t_fail "random reads differ"

	# A second read is served by the cache: hits grow, nothing is fetched.
	drop_page_cache
	fetched=$(t_status "$M" s3.bytes_fetched)
	hits=$(t_status "$M" cache.hits)
	cmp "$M/live/big.bin" "$SRC/big.bin" || t_fail "re-read differs"
	[ "$(t_status "$M" s3.bytes_fetched)" = "$fetched" ] ||
		t_fail "re-read fetched bytes: $fetched -> $(t_status "$M" s3.bytes_fetched)"
	[ "$(t_status "$M" cache.hits)" -gt "$hits" ] || t_fail "re-read did not hit the cache"

	# xattrs.
	size=$(stat -c %s "$SRC/big.bin")
	[ "$(getfattr --only-values -n dmfs.size "$M/live/big.bin")" = "$size" ] || t_fail "dmfs.size"
	[ "$(getfattr --only-values -n dmfs.cached "$M/live/big.bin")" = "$size" ] || t_fail "dmfs.cached"
	[ -n "$(getfattr --only-values -n dmfs.etag "$M/live/big.bin")" ] || t_fail "dmfs.etag"
	[ "$(getfattr --only-values -n dmfs.s3uri "$M/live/big.bin")" = "$T_STORE/big.bin" ] ||
		t_fail "dmfs.s3uri: $(getfattr --only-values -n dmfs.s3uri "$M/live/big.bin")"
	getfattr -d -m - "$M/live/big.bin" 2>/dev/null | grep -q '^dmfs.etag=' || t_fail "listxattr"

	# snapshots/ and datasets/ stay read-only (live/ writes: t0300).
	if touch "$M/snapshots/new" 2>"$T_ROOT/err"; then t_fail "touch succeeded"; fi
	grep -q "Read-only file system" "$T_ROOT/err" || t_fail "touch: $(cat "$T_ROOT/err")"
	if mkdir "$M/datasets/newdir" 2>/dev/null; then t_fail "mkdir succeeded"; fi

	# Remount: the cache survives, nothing is fetched again.
	t_umount "$M"
	t_mount "$M" debug
	cmp "$M/live/big.bin" "$SRC/big.bin" || t_fail "read after remount differs"
	[ "$(t_tree_sums "$M/live")" = "$want_sums" ] || t_fail "sha256 after remount"
	[ "$(t_status "$M" s3.bytes_fetched)" = 0 ] ||
		t_fail "remount fetched $(t_status "$M" s3.bytes_fetched) bytes"
	t_umount "$M"

	# view=live puts the bucket at the root, as s3fs would.
	t_mount "$M" view=live
	[ "$(ls "$M" | tr '\n' ' ')" = "$(ls "$SRC" | tr '\n' ' ')" ] || t_fail "view=live root: $(ls "$M")"
	cmp "$M/q/c/d/f.txt" "$SRC/q/c/d/f.txt" || t_fail "view=live read"
	[ -r "$M/.dmfs/status" ] || t_fail "view=live: no .dmfs/status"
	t_umount "$M"

	# No secret and no signature in the debug log.
	if [ "$kind" != file ]; then
		grep -q "S3 GET" "$T_LOG" || t_fail "debug log has no request lines"
		! grep -qF "$AWS_SECRET_ACCESS_KEY" "$T_LOG" || t_fail "the secret key is in the log"
		! grep -q "Signature=" "$T_LOG" || t_fail "a signature is in the log"
	fi
	t_backend_stop
done
t_done
