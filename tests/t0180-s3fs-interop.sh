#!/bin/bash
# t0180-s3fs-interop: a tree written through s3fs (with its "dir/" marker
# objects, empty directories included) reads the same through dmfs, and a
# tree uploaded with awscli (no markers) looks the same in both.
. "$(dirname "$0")/lib/common.sh"

command -v s3fs >/dev/null || t_skip "s3fs is not installed"
for kind in $(t_backends); do
	[ "$kind" = rgw ] || continue # s3fs needs a server that checks nothing odd; RGW is the reference
	t_backend_start "$kind"
	pw=$T_ROOT/passwd
	printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$pw"
	chmod 600 "$pw"
	S=$T_ROOT/s3fs
	mkdir -p "$S"
	s3fs "$T_BUCKET:/data" "$S" -o "url=$S3_ENDPOINT,use_path_request_style,passwd_file=$pw" ||
		t_fail "s3fs mount"
	T_MOUNTS+=("$S")
	mkdir -p "$S/made by s3fs/empty" "$S/made by s3fs/sub"
	echo "through s3fs" >"$S/made by s3fs/sub/f.txt"
	head -c 3000000 /dev/urandom >"$S/made by s3fs/r.bin"
	sync
	s3_aws s3api head-object --bucket "$T_BUCKET" --key "data/made by s3fs/empty/" >/dev/null ||
		t_fail "s3fs wrote no marker object (test assumption)"
	echo "through awscli" >"$T_ROOT/a.txt"
	t_put_file "$T_ROOT/a.txt" "aws/x/y/a.txt"

	M=$T_ROOT/mnt
	t_mount "$M" stat_ttl=1
	[ -d "$M/live/made by s3fs/empty" ] || t_fail "empty s3fs directory missing"
	[ -z "$(ls -A "$M/live/made by s3fs/empty")" ] || t_fail "empty directory not empty"
	[ "$(cat "$M/live/made by s3fs/sub/f.txt")" = "through s3fs" ] || t_fail "s3fs file"
	cmp "$M/live/made by s3fs/r.bin" "$S/made by s3fs/r.bin" || t_fail "s3fs binary file"
	[ "$(cat "$S/aws/x/y/a.txt")" = "through awscli" ] || t_fail "s3fs reading awscli file"
	[ "$(cat "$M/live/aws/x/y/a.txt")" = "through awscli" ] || t_fail "dmfs reading awscli file"
	[ "$(cd "$S" && find . | sort)" = "$(cd "$M/live" && find . | sort)" ] ||
		t_fail "trees differ: $(diff <(cd "$S" && find . | sort) <(cd "$M/live" && find . | sort))"
	fusermount3 -u "$S"
	t_backend_stop
done
t_done
