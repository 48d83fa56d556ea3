#!/bin/bash
# t0350-live-big-copy: server-side copies of objects over
# multipart_copy_size (lowered to 5 MiB here, so a 23 MiB file stands in
# for one over S3's 5 GiB) are multipart uploads of UploadPartCopy parts.
# mv of a file and of a directory holding one, chmod, and a snapshot make
# objects whose bytes and metadata (x-amz-meta-dmfs-sha256, mode) equal
# the source's, read back with awscli; their ETag says "5 parts".  A copy
# whose source is replaced mid-way (parts slowed down by a proxy) fails:
# the destination is untouched and no multipart upload is left behind
# (on rgw, which ignores x-amz-copy-source-if-match on parts, it is the
# HEAD of the source before completing that catches it).
# s3rver has no UploadPartCopy: there every such copy must fail with
# ENOTSUP, the reason in .dmfs/last-error, and change nothing.
. "$(dirname "$0")/lib/common.sh"

PROXY=${DELAY_PROXY:-$(dirname "$DMFS")/tests/tools/delay_proxy}
MIB=1048576
SIZE=$((23 * MIB + 12345))
SRC=$T_ROOT/src
mkdir -p "$SRC"
t_make_file "$SRC/big.bin" $SIZE big
t_make_file "$SRC/big2.bin" $SIZE big2
t_make_file "$SRC/other.bin" $SIZE other
echo small >"$SRC/small.txt"

# same_bytes KEY FILE [WHY]: data/KEY in the bucket, read back with
# awscli, holds FILE's bytes.
same_bytes() {
	local got=$T_ROOT/got.bin
	rm -f "$got"
	s3_aws s3 cp --quiet "s3://$T_BUCKET/data/$1" "$got" || t_fail "cannot read $1 back${3:+ ($3)}"
	cmp -s "$got" "$2" || t_fail "$1: other bytes than $2${3:+ ($3)}"
}

# in_5_parts KEY: data/KEY was made of 5 parts (its ETag says so).
in_5_parts() {
	case $(t_s3_head "$1" etag) in
	*-5) ;;
	*) t_fail "$1: ETag $(t_s3_head "$1" etag): not a copy in 5 parts" ;;
	esac
}

# same_object KEY FILE SHA MODE: data/KEY in the bucket holds FILE's bytes,
# sha256 SHA and mode MODE, and was made of 5 parts.
same_object() {
	same_bytes "$1" "$2"
	[ "$(t_s3_head "$1" sha256)" = "$3" ] || t_fail "$1: sha256 $(t_s3_head "$1" sha256), want $3"
	[ "$(t_s3_head "$1" mode)" = "$4" ] || t_fail "$1: mode $(t_s3_head "$1" mode), want $4"
	in_5_parts "$1"
}

# How many multipart uploads the bucket holds; fails as
# list-multipart-uploads does.
upload_count() {
	s3_aws s3api list-multipart-uploads --bucket "$T_BUCKET" \
		--query 'length(Uploads || `[]`)' --output text
}

# No multipart upload left in the bucket.
no_uploads() {
	local n
	n=$(upload_count) || t_fail "list-multipart-uploads failed"
	[ "$n" = 0 ] || t_fail "$n multipart uploads left: $(s3_aws s3api list-multipart-uploads --bucket "$T_BUCKET")"
}

for kind in $(t_backends); do
	[ "$kind" = file ] && continue # S3's copy limit: nothing to test there
	t_backend_start "$kind"
	M=$T_ROOT/mnt
	L=$M/live
	t_mount "$M" stat_ttl=1 multipart_copy_size=5M debug=1
	umask 022
	mkdir -p "$L/a" "$L/d/sub" || t_fail "mkdir"
	cp "$SRC/big.bin" "$L/a/big.bin" || t_fail "write big.bin"
	cp "$SRC/big2.bin" "$L/d/sub/big2.bin" || t_fail "write big2.bin"
	cp "$SRC/small.txt" "$L/d/small.txt" || t_fail "write small.txt"
	sha1=$(t_s3_head a/big.bin sha256)
	sha2=$(t_s3_head d/sub/big2.bin sha256)
	[ "$sha1" = "$(sha256sum <"$SRC/big.bin" | cut -c1-64)" ] || t_fail "big.bin stored with sha256 $sha1"
	[ "$(t_s3_head a/big.bin mode)" = $((8#100644)) ] || t_fail "big.bin stored with mode $(t_s3_head a/big.bin mode)"

	if [ "$kind" = s3rver ]; then
		# s3rver 3.7.1 answers 501 NotImplemented to UploadPartCopy.
		t_log "s3rver has no UploadPartCopy: checking that big copies fail cleanly"
		T_ALLOW_ERRORS=1
		etag1=$(t_s3_head a/big.bin etag)
		out=$(mv "$L/a/big.bin" "$L/a/moved.bin" 2>&1) && t_fail "mv of a big file worked on s3rver"
		case $out in *"Operation not supported"*) ;; *) t_fail "mv: $out" ;; esac
		grep -q "UploadPartCopy" "$M/.dmfs/last-error" || t_fail "last-error: $(cat "$M/.dmfs/last-error")"
		t_log "mv said: $out; last-error: $(cat "$M/.dmfs/last-error")"
		[ "$(t_s3_head a/moved.bin size)" = none ] || t_fail "a/moved.bin exists after a failed mv"
		[ "$(t_s3_head a/big.bin etag)" = "$etag1" ] || t_fail "a/big.bin changed by a failed mv"
		out=$(chmod 600 "$L/a/big.bin" 2>&1) && t_fail "chmod of a big file worked on s3rver"
		case $out in *"Operation not supported"*) ;; *) t_fail "chmod: $out" ;; esac
		grep -q "UploadPartCopy" "$M/.dmfs/last-error" || t_fail "last-error after chmod: $(cat "$M/.dmfs/last-error")"
		[ "$(t_s3_head a/big.bin etag)" = "$etag1" ] || t_fail "a/big.bin changed by a failed chmod"
		[ "$(t_s3_head a/big.bin mode)" = $((8#100644)) ] || t_fail "a/big.bin mode changed by a failed chmod"
		out=$(t_dmfs snapshot --id s1 -o multipart_copy_size=5M 2>&1) && t_fail "snapshot worked on s3rver: $out"
		echo "$out" | grep -qi "not supported" || t_fail "snapshot said: $out"
		t_log "snapshot said: $(echo "$out" | tail -1)"
		[ "$(t_s3_head ".dmfs/objects/sha256/${sha1:0:2}/${sha1:2}" size)" = none ] ||
			t_fail "a content object of a failed snapshot exists"
		# Small copies still go as one CopyObject.
		mv "$L/d/small.txt" "$L/d/small2.txt" || t_fail "mv of a small file on s3rver"
		[ "$(cat "$L/d/small2.txt")" = small ] || t_fail "small2.txt"
		if n=$(upload_count 2>/dev/null); then
			[ "$n" = 0 ] || t_fail "$n multipart uploads left on s3rver"
		else
			t_log "s3rver cannot list multipart uploads; not checked"
		fi
		t_umount "$M"
		t_log_reset
		T_ALLOW_ERRORS=0
		t_backend_stop
		continue
	fi

	# mv of a file: copied in 5 parts, metadata and bytes as they were.
	mv "$L/a/big.bin" "$L/a/moved.bin" || t_fail "mv big.bin"
	[ "$(t_s3_head a/big.bin size)" = none ] || t_fail "a/big.bin still there after mv"
	same_object a/moved.bin "$SRC/big.bin" "$sha1" $((8#100644))
	grep -q "multipart copy .*a/big.bin.* in 5 parts" "$T_LOG" || t_fail "no multipart copy in the log"

	# mv of a directory holding a big file (and a small one).
	mv "$L/d" "$L/d2" || t_fail "mv d"
	[ "$(t_s3_head d/sub/big2.bin size)" = none ] || t_fail "d/sub/big2.bin still there after mv"
	same_object d2/sub/big2.bin "$SRC/big2.bin" "$sha2" $((8#100644))
	[ "$(cat "$L/d2/small.txt")" = small ] || t_fail "d2/small.txt"

	# chmod of a closed file: a copy onto itself.
	chmod 600 "$L/a/moved.bin" || t_fail "chmod"
	same_object a/moved.bin "$SRC/big.bin" "$sha1" $((8#100600))
	[ "$(stat -c %a "$L/a/moved.bin")" = 600 ] || t_fail "mode through dmfs: $(stat -c %a "$L/a/moved.bin")"
	cmp "$L/a/moved.bin" "$SRC/big.bin" || t_fail "moved.bin through dmfs"
	no_uploads

	# A snapshot copies the big files into the content store in parts.
	out=$(t_dmfs snapshot --id s1 -o multipart_copy_size=5M) || t_fail "snapshot: $out"
	t_log "snapshot: $(echo "$out" | head -1)"
	for s in "$sha1" "$sha2"; do
		key=.dmfs/objects/sha256/${s:0:2}/${s:2}
		[ "$(t_s3_head "$key" sha256)" = "$s" ] || t_fail "$key: sha256 $(t_s3_head "$key" sha256)"
		in_5_parts "$key"
	done
	same_bytes ".dmfs/objects/sha256/${sha1:0:2}/${sha1:2}" "$SRC/big.bin" "content object of big.bin"
	cmp "$M/snapshots/s1/a/moved.bin" "$SRC/big.bin" 2>/dev/null ||
		{ sleep 2; cmp "$M/snapshots/s1/a/moved.bin" "$SRC/big.bin"; } || t_fail "snapshot read back"
	no_uploads
	t_umount "$M"
	t_check_log

	# The source replaced mid-copy: parts slowed down by a proxy, the
	# source overwritten (directly on the server) once the upload exists.
	if [ -x "$PROXY" ]; then
		rm -f "$T_ROOT/proxy.port"
		"$PROXY" --listen 127.0.0.1:0 --upstream "127.0.0.1:$S3_PORT" --latency-ms 700 \
			--port-file "$T_ROOT/proxy.port" --quiet &
		PROXY_PID=$!
		T_PIDS+=("$PROXY_PID")
		for _ in $(seq 50); do [ -s "$T_ROOT/proxy.port" ] && break; sleep 0.1; done
		[ -s "$T_ROOT/proxy.port" ] || t_fail "proxy did not start"
		T_ALLOW_ERRORS=1
		t_mount "$M" stat_ttl=1 multipart_copy_size=5M parallel_uploads=1 \
			debug=1 "endpoint=http://127.0.0.1:$(cat "$T_ROOT/proxy.port")"
		stat "$L/a/moved.bin" >/dev/null || t_fail "stat through the proxy"
		s3_aws s3 cp --quiet "$SRC/big2.bin" "s3://$T_BUCKET/data/a/target.bin" || t_fail "put target.bin"
		target_etag=$(t_s3_head a/target.bin etag)
		mv "$L/a/moved.bin" "$L/a/target.bin" 2>"$T_ROOT/mv.err" &
		mv_pid=$!
		for _ in $(seq 200); do
			n=$(upload_count)
			[ "$n" != 0 ] && break
			sleep 0.05
		done
		[ "$n" != 0 ] || t_fail "the copy never started a multipart upload"
		s3_aws s3 cp --quiet "$SRC/other.bin" "s3://$T_BUCKET/data/a/moved.bin" || t_fail "overwrite the source"
		wait "$mv_pid" && t_fail "mv went through although its source changed"
		t_log "mv said: $(cat "$T_ROOT/mv.err")"
		grep -qE "PreconditionFailed|changed during the copy" "$T_LOG" ||
			t_fail "the log does not say the source changed"
		t_log "why: $(grep -E "PreconditionFailed|changed during the copy" "$T_LOG" | head -1 | cut -c1-200)"
		grep -q "MPU-ABORT" "$T_LOG" || t_fail "the upload was not aborted"
		[ "$(t_s3_head a/target.bin etag)" = "$target_etag" ] || t_fail "the destination changed"
		same_bytes a/target.bin "$SRC/big2.bin" "the destination's bytes changed"
		same_bytes a/moved.bin "$SRC/other.bin" "the source is not the new one"
		no_uploads
		t_umount "$M"
		kill "$PROXY_PID" 2>/dev/null
		wait "$PROXY_PID" 2>/dev/null || true
		t_log_reset
		T_ALLOW_ERRORS=0

		# Every other request refused (503 SlowDown): the parts, the
		# create and the completion are retried and the copy is whole.
		rm -f "$T_ROOT/proxy.port"
		"$PROXY" --listen 127.0.0.1:0 --upstream "127.0.0.1:$S3_PORT" --fail-every 2 \
			--port-file "$T_ROOT/proxy.port" --quiet &
		PROXY_PID=$!
		T_PIDS+=("$PROXY_PID")
		for _ in $(seq 50); do [ -s "$T_ROOT/proxy.port" ] && break; sleep 0.1; done
		[ -s "$T_ROOT/proxy.port" ] || t_fail "proxy did not start"
		t_mount "$M" stat_ttl=1 multipart_copy_size=5M retries=12 retry_base_ms=10 \
			retry_max_ms=50 "endpoint=http://127.0.0.1:$(cat "$T_ROOT/proxy.port")"
		chmod 640 "$L/d2/sub/big2.bin" || t_fail "chmod through refusals"
		r=$(t_status "$M" s3.retries)
		t_log "chmod through refusals: $r retries"
		[ "$r" -gt 0 ] || t_fail "no retries counted"
		t_umount "$M"
		kill "$PROXY_PID" 2>/dev/null
		wait "$PROXY_PID" 2>/dev/null || true
		same_object d2/sub/big2.bin "$SRC/big2.bin" "$sha2" $((8#100640))
		no_uploads
	else
		t_log "no delay_proxy at $PROXY: the mid-copy failure is not tested"
	fi
	t_backend_stop
done
t_done
