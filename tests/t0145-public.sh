#!/bin/bash
# t0145-public: -o public sends unsigned requests and needs no credentials:
# a public-read bucket reads through it; a private one answers EACCES.
. "$(dirname "$0")/lib/common.sh"

echo "for everyone" >"$T_ROOT/p.txt"
for kind in $(t_backends); do
	[ "$kind" = rgw ] || continue # the server that checks who may read
	t_backend_start "$kind"
	t_put_file "$T_ROOT/p.txt" p.txt
	M=$T_ROOT/mnt
	mkdir -p "$M"
	anon() {
		env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SHARED_CREDENTIALS_FILE \
			HOME="$T_ROOT" "$DMFS" mount "$T_STORE" "$M" \
			-o "$T_MOUNT_OPTS,public,cache_dir=$T_ROOT/cache,log_file=$T_LOG"
	}
	# Private bucket: anonymous access is denied.
	T_ALLOW_ERRORS=1
	anon 2>"$T_ROOT/err" || t_fail "anonymous mount: $(cat "$T_ROOT/err")"
	T_MOUNTS+=("$M")
	grep -q "access denied" "$T_ROOT/err" || t_fail "no warning for a private bucket: $(cat "$T_ROOT/err")"
	err=$(cat "$M/live/p.txt" 2>&1) && t_fail "anonymous read of a private bucket succeeded"
	echo "$err" | grep -q "Permission denied" || t_fail "private bucket: $err"
	t_umount "$M"
	t_log_reset
	T_ALLOW_ERRORS=0

	# Public-read bucket and object: anonymous reads work.
	s3_aws s3api put-bucket-acl --bucket "$T_BUCKET" --acl public-read || t_fail "bucket acl"
	s3_aws s3api put-object-acl --bucket "$T_BUCKET" --key data/p.txt --acl public-read || t_fail "object acl"
	anon || t_fail "anonymous mount of a public bucket"
	[ "$(cat "$M/live/p.txt")" = "for everyone" ] || t_fail "anonymous read"
	t_umount "$M"
	t_backend_stop
done
t_done
