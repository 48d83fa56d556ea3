#!/bin/bash
# t0115-replaced-mid-read: an object replaced by another client while a
# file handle is open and half read gives EIO on the next uncached read
# (every GET carries If-Match with the ETag the file was opened with) -
# never bytes of the new object mixed into the old one.
. "$(dirname "$0")/lib/common.sh"

SRC=$T_ROOT/src
mkdir -p "$SRC"
t_make_file "$SRC/f.bin" 100000000 first
t_make_file "$T_ROOT/second.bin" 100000000 second

for kind in $(t_backends); do
	t_backend_start "$kind"
	t_put_tree "$SRC"
	if [ "$kind" != file ]; then
		# s3rver ignores If-Match on ranged GETs (answers 206 where S3
		# and RGW answer 412): a server defect dmfs cannot see past.
		code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
			--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
			-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H 'If-Match: "no-such-etag"' \
			-H "Range: bytes=0-9" "$S3_ENDPOINT/$T_BUCKET/data/f.bin")
		if [ "$code" != 412 ]; then
			t_log "server answers $code to a failed If-Match: check skipped"
			t_backend_stop
			continue
		fi
	fi
	M=$T_ROOT/mnt
	t_mount "$M" small_file_max=0 readahead_max=1M read_ahead_kb=0
	T_ALLOW_ERRORS=1
	cat >"$T_ROOT/reader.py" <<'PY'
import errno, os, sys, time
path, old, flag = sys.argv[1:4]
want = open(old, "rb").read()
fd = os.open(path, os.O_RDONLY)
head = os.pread(fd, 65536, 0)
assert head == want[:65536], "first read differs"
open(flag, "w").close()          # ask the shell to replace the object
while os.path.exists(flag):
    time.sleep(0.1)
try:
    data = os.pread(fd, 1 << 20, 90_000_000)
except OSError as e:
    if e.errno != errno.EIO:
        sys.exit(f"expected EIO, got {e}")
    print("read after replacement: EIO, as it should")
    sys.exit(0)
if data != want[90_000_000:90_000_000 + len(data)]:
    sys.exit("bytes of the new object were returned")
sys.exit("the uncached read succeeded after replacement (no If-Match?)")
PY
	python3 "$T_ROOT/reader.py" "$M/live/f.bin" "$SRC/f.bin" "$T_ROOT/replace" &
	py=$!
	for _ in $(seq 300); do [ -e "$T_ROOT/replace" ] && break; sleep 0.1; done
	[ -e "$T_ROOT/replace" ] || t_fail "reader did not start"
	t_put_file "$T_ROOT/second.bin" f.bin
	rm -f "$T_ROOT/replace"
	wait "$py" || t_fail "mid-read replacement not detected"
	grep -q "object changed while being read" "$T_LOG" || t_fail "no log line for the changed object"
	t_umount "$M"
	t_log_reset
	T_ALLOW_ERRORS=0
	t_backend_stop
done
t_done
