#!/bin/bash
# t0360-live-stream: uploads that start while the file is written
# (-o stream_upload, on by default; multipart_size lowered to 5 MiB so a
# 23 MiB file has 5 parts).
#  - cp of a file in order: the parts go while cp writes (the debug log
#    and .dmfs/status uploads.streamed say so); the object read back with
#    awscli has the bytes, x-amz-meta-dmfs-sha256 and mode, no
#    x-amz-meta-dmfs-stream marker, and no multipart upload is left;
#  - each thing that changes bytes already sent cancels the stream and the
#    file goes whole at close, right: a write back into the first part, a
#    truncation below what was sent, a rename and an unlink while open;
#    fsync half-way then more appends; stream_upload=0;
#  - kill -9 in the middle of a streamed write: the next mount uploads the
#    staged copy whole;
#  - a crash between the completion and the metadata copy (made by hand:
#    the object with the staged bytes and the sidecar's marker) is
#    recovered as our own object, while an object with another marker is
#    another writer's: the staged copy is kept, the object untouched.
# S3 only: the file store has no multipart upload.
. "$(dirname "$0")/lib/common.sh"

MIB=1048576
SRC=$T_ROOT/src
mkdir -p "$SRC"
for f in big other; do t_make_file "$SRC/$f.bin" $((23 * MIB + 4321)) $f; done

# object_is KEY FILE: data/KEY holds FILE's bytes with FILE's sha256 in
# its metadata and no stream marker; no multipart upload is left over
# (where the server can list them: not s3rver).
object_is() {
	local got=$T_ROOT/got.bin n
	rm -f "$got"
	t_store_cat "$1" >"$got" || t_fail "$1 is not in the bucket"
	cmp -s "$got" "$2" || t_fail "$1 in the bucket: other bytes than $2"
	[ "$(t_s3_head "$1" sha256)" = "$(sha256sum <"$2" | cut -c1-64)" ] || t_fail "$1: sha256 metadata $(t_s3_head "$1" sha256)"
	[ "$(t_s3_head "$1" stream)" = - ] || t_fail "$1: the stream marker is still on the object"
	[ "$T_KIND" = s3rver ] && return 0 # it cannot list multipart uploads
	n=$(s3_aws s3api list-multipart-uploads --bucket "$T_BUCKET" --query 'length(Uploads || `[]`)' --output text) ||
		t_fail "list-multipart-uploads failed"
	[ "$n" = 0 ] || t_fail "$n multipart uploads left behind after $1"
}

# ops.py MNTFILE LOCALFILE OP...: the same writes on a file in the mount and
# on a local copy (the expected bytes).  OPs: w:OFF:LEN[:SRCOFF] (LEN
# bytes of big.bin from SRCOFF, by default OFF, written at OFF), t:SIZE
# (ftruncate), s (fsync), p:SECS (pause: the parts offered so far are
# sent meanwhile), mv:NEWPATH (rename the
# mount's file; the local one keeps its name), rm (unlink the mount's
# file; the local one too), kill:PID (SIGKILL, then stop).
cat >"$T_ROOT/ops.py" <<'PY'
import os, signal, sys, time
mnt, loc, src = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read()
fds = [os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644) for p in (mnt, loc)]
for op in sys.argv[4:]:
    k, _, a = op.partition(":")
    if k == "w":
        off, n, *so = map(int, a.split(":"))
        so = so[0] if so else off
        for fd in fds:
            done = 0
            while done < n:  # in 1 MiB writes, as cp does
                m = min(1 << 20, n - done)
                os.pwrite(fd, src[so + done:so + done + m], off + done)
                done += m
    elif k == "t":
        for fd in fds:
            os.ftruncate(fd, int(a))
    elif k == "s":
        os.fsync(fds[0])
    elif k == "p":
        time.sleep(float(a))
    elif k == "mv":
        os.rename(mnt, a)
    elif k == "rm":
        os.unlink(mnt)
        os.unlink(loc)
    elif k == "kill":
        os.kill(int(a), signal.SIGKILL)
        sys.exit(0)
for fd in fds:
    os.close(fd)
PY
ops() { python3 "$T_ROOT/ops.py" "$1" "$2" "$SRC/big.bin" "${@:3}"; }

for kind in $(t_backends); do
	[ "$kind" = file ] && continue
	t_backend_start "$kind"
	M=$T_ROOT/mnt
	L=$M/live
	t_mount "$M" multipart_size=5M debug=1
	umask 022

	# --- in order: streamed ---
	cp "$SRC/big.bin" "$L/big.bin" || t_fail "cp big.bin"
	object_is big.bin "$SRC/big.bin"
	[ "$(t_s3_head big.bin mode)" = $((8#100644)) ] || t_fail "big.bin: mode $(t_s3_head big.bin mode)"
	grep -q "upload big.bin: [1-9][0-9]* of 5 parts sent while the file was written" "$T_LOG" ||
		t_fail "big.bin was not streamed: $(grep 'big.bin' "$T_LOG" | tail -5)"
	[ "$(t_status "$M" uploads.streamed)" = 1 ] || t_fail "uploads.streamed is $(t_status "$M" uploads.streamed)"
	cmp "$L/big.bin" "$SRC/big.bin" || t_fail "big.bin read back through the mount"

	# --- bytes already sent change: the file goes whole, right ---
	ops "$L/back.bin" "$T_ROOT/back.bin" w:0:$((14 * MIB)) p:1 w:100:5000:7777 w:$((14 * MIB)):$((9 * MIB)) || t_fail "back.bin"
	object_is back.bin "$T_ROOT/back.bin"
	ops "$L/trunc.bin" "$T_ROOT/trunc.bin" w:0:$((20 * MIB)) p:1 t:$((3 * MIB)) w:$((3 * MIB)):$((6 * MIB)) || t_fail "trunc.bin"
	object_is trunc.bin "$T_ROOT/trunc.bin"
	ops "$L/grow.bin" "$T_ROOT/grow.bin" w:0:$((12 * MIB)) t:$((30 * MIB)) w:$((30 * MIB)):$((MIB)) || t_fail "grow.bin"
	object_is grow.bin "$T_ROOT/grow.bin"
	ops "$L/sync.bin" "$T_ROOT/sync.bin" w:0:$((12 * MIB)) s w:$((12 * MIB)):$((11 * MIB)) || t_fail "sync.bin"
	object_is sync.bin "$T_ROOT/sync.bin"
	ops "$L/before.bin" "$T_ROOT/renamed.bin" w:0:$((15 * MIB)) p:1 mv:"$L/renamed.bin" w:$((15 * MIB)):$((5 * MIB)) || t_fail "rename while open"
	object_is renamed.bin "$T_ROOT/renamed.bin"
	[ "$(t_s3_head before.bin size)" = none ] || t_fail "before.bin still in the bucket after the rename"
	ops "$L/gone.bin" "$T_ROOT/gone.bin" w:0:$((15 * MIB)) p:1 rm w:$((15 * MIB)):$((5 * MIB)) || t_fail "unlink while open"
	[ "$(t_s3_head gone.bin size)" = none ] || t_fail "gone.bin in the bucket after unlink"
	object_is big.bin "$SRC/big.bin" # and nothing left over from gone.bin
	[ "$(t_status "$M" uploads.streamed)" -ge 2 ] || t_fail "no upload streamed but big.bin"
	t_umount "$M"

	# --- stream_upload=0: uploaded at close, as before ---
	: >"$T_LOG"
	t_mount "$M" multipart_size=5M stream_upload=0 debug=1
	cp "$SRC/other.bin" "$L/plain.bin" || t_fail "cp plain.bin"
	object_is plain.bin "$SRC/other.bin"
	grep -q "parts sent while the file was written" "$T_LOG" && t_fail "streamed with stream_upload=0"
	[ "$(t_status "$M" uploads.streamed)" = 0 ] || t_fail "uploads.streamed with stream_upload=0"

	# --- kill -9 while parts are going: the next mount sends it whole ---
	t_umount "$M"
	t_mount "$M" multipart_size=5M debug=1
	pid=$(t_status "$M" pid)
	ops "$L/crash.bin" "$T_ROOT/crash.bin" w:0:$((17 * MIB)) kill:"$pid" || t_fail "write before kill"
	t_umount_killed "$M"
	[ "$(t_s3_head crash.bin size)" = none ] || t_fail "crash.bin in the bucket before recovery"
	t_mount "$M" multipart_size=5M debug=1
	grep -q "recovered crash.bin" "$T_LOG" || t_fail "crash.bin: recovery not logged"
	object_is crash.bin "$T_ROOT/crash.bin"

	# --- killed after the completion, before the metadata: the object
	# with our marker is ours; one with another marker is not ---
	for who in ours theirs; do
		pid=$(t_status "$M" pid)
		ops "$L/mark-$who.bin" "$T_ROOT/mark-$who.bin" w:0:$((17 * MIB)) kill:"$pid" || t_fail "write before kill ($who)"
		t_umount_killed "$M"
		side=$(grep -l "\"mark-$who.bin\"" "$T_ROOT"/cache/staging/*.json) || t_fail "no sidecar for mark-$who.bin"
		token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("stream", ""))' "$side")
		[ ${#token} = 32 ] || t_fail "the sidecar of mark-$who.bin has no stream marker: $(cat "$side")"
		[ $who = theirs ] && token=00000000000000000000000000000000
		s3_aws s3 cp --quiet "$T_ROOT/mark-$who.bin" "s3://$T_BUCKET/data/mark-$who.bin" \
			--metadata "dmfs-stream=$token" || t_fail "put mark-$who.bin"
		T_ALLOW_ERRORS=1
		t_mount "$M" multipart_size=5M debug=1
		T_ALLOW_ERRORS=0
	done
	grep -q "recovered mark-ours.bin" "$T_LOG" || t_fail "mark-ours.bin: not recovered: $(grep mark-ours "$T_LOG" | tail -3)"
	object_is mark-ours.bin "$T_ROOT/mark-ours.bin"
	grep -q "staged copy of mark-theirs.bin left by an earlier mount could not be uploaded (.*changed" "$T_LOG" ||
		grep -q "mark-theirs.bin.*object changed in the bucket" "$T_LOG" ||
		t_fail "mark-theirs.bin: no stale-writer refusal logged: $(grep mark-theirs "$T_LOG" | tail -3)"
	[ "$(t_s3_head mark-theirs.bin stream)" = 00000000000000000000000000000000 ] ||
		t_fail "mark-theirs.bin: the other writer's object was replaced"
	ls "$T_ROOT"/cache/staging/*.data | xargs grep -l . >/dev/null || t_fail "mark-theirs.bin: staged copy not kept"
	t_log_reset
	t_umount "$M"
	t_backend_stop
done
t_done
