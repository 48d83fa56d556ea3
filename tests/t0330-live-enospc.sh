#!/bin/bash
# t0330-live-enospc: a full cache disk while writing through live/.
# The cache directory is a small tmpfs (DMFS_TEST_TMPFS_MB, default 48).
#  (a) cp of a file bigger than the free space into live/ fails with
#      "No space left on device" and nothing of it reaches the bucket or
#      shows in live/;
#  (b) the same over an existing object: the object stays as it was;
#  (c) the staged space is released: a small file is then written and
#      reads back right through a fresh mount and an independent client;
#  (d) the mount stays up (.dmfs/status, .dmfs/last-error says why);
#  (e) a file bigger than the disk reads right: the block cache skips or
#      evicts when its disk is full, the read never fails;
#  (f) setfattr on a full disk fails cleanly (ENOSPC) or works, and the
#      mount stays up;
#  (g) kill -9 after a write failed for space: the next mount uploads
#      nothing of that file and removes its staged copy;
#  (h) the block cache leaves room on its disk: after reading more than
#      the disk holds, a small file can still be written; LMDB's lock
#      files have all their blocks (a store into a sparse page of a map
#      on a full disk is SIGBUS).
. "$(dirname "$0")/lib/common.sh"

FS_MB=${DMFS_TEST_TMPFS_MB:-48}
BIG=$T_ROOT/big.bin # more than the disk
t_make_file "$BIG" $(((FS_MB + 16) << 20)) big || t_fail "make big.bin"
t_make_file "$T_ROOT/old.bin" 1000000 old || t_fail "make old.bin"
t_make_file "$T_ROOT/small.bin" 300000 small || t_fail "make small.bin"

# The mount daemon is alive and answers.
alive() {
	kill -0 "$PID" 2>/dev/null || t_fail "dmfs died ($1)"
	mountpoint -q "$M" || t_fail "not mounted any more ($1)"
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$M/.dmfs/status" ||
		t_fail ".dmfs/status unreadable ($1)"
}

# Staged copies left in the cache directory.
staged() { find "$T_ROOT/cache/staging" -name '*.data' 2>/dev/null | wc -l; }

# Fill the tmpfs up to its last few KiB.
fill_disk() {
	dd if=/dev/zero of="$T_ROOT/cache/filler" bs=64k 2>/dev/null
	[ "$(df --output=avail -k "$T_ROOT/cache" | tail -1)" -lt 256 ] ||
		t_fail "could not fill the disk"
}

# write_until_enospc NAME heal|kill: with about 12 MiB left free on the
# cache disk, write big.bin into live/NAME until a write fails, which must
# be with ENOSPC (writing all of it fails).  Then "heal": fsync fails with
# ENOSPC as well, and the file cut to nothing takes a small write and
# closes; "kill": kill -9 of the mount daemon ($PID), NAME still open.
write_until_enospc() {
	rm -f "$T_ROOT/cache/filler"
	dd if=/dev/zero of="$T_ROOT/cache/filler" bs=1M count=$((FS_MB - 12)) 2>/dev/null
	python3 - "$L/$1" "$BIG" "$2" "$PID" <<'PY'
import errno, os, signal, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
src = open(sys.argv[2], "rb")
try:
    while True:
        b = src.read(1 << 20)
        if not b:
            raise SystemExit("wrote all of big.bin")
        os.write(fd, b)
except OSError as e:
    assert e.errno == errno.ENOSPC, e
if sys.argv[3] == "kill":
    os.kill(int(sys.argv[4]), signal.SIGKILL)
    raise SystemExit(0)
assert sys.argv[3] == "heal", sys.argv[3]
try:
    os.fsync(fd)
except OSError as e:
    assert e.errno == errno.ENOSPC, e
else:
    raise SystemExit("fsync after ENOSPC succeeded")
os.ftruncate(fd, 0)
os.lseek(fd, 0, os.SEEK_SET)  # ftruncate leaves the offset where it was
os.write(fd, b"whole again\n")
os.close(fd)
PY
}

for kind in $(t_backends); do
	t_backend_start "$kind"
	t_put_file "$T_ROOT/old.bin" old.bin
	t_tmpfs "$T_ROOT/cache" "${FS_MB}m"
	M=$T_ROOT/mnt
	L=$M/live
	t_mount "$M" stat_ttl=30
	PID=$(t_status "$M" pid)
	T_ALLOW_ERRORS=1

	# --- (a) a new file bigger than the disk ---
	if cp "$BIG" "$L/new.bin" 2>"$T_ROOT/cp.err"; then
		t_fail "cp of $((FS_MB + 16)) MiB onto a $FS_MB MiB cache disk succeeded"
	fi
	grep -q "No space left on device" "$T_ROOT/cp.err" ||
		t_fail "cp: not ENOSPC: $(cat "$T_ROOT/cp.err")"
	alive "after (a)"
	! t_in_store new.bin || t_fail "new.bin in the bucket after ENOSPC"
	[ ! -e "$L/new.bin" ] || t_fail "new.bin shows in live/ after ENOSPC: $(ls -l "$L/new.bin")"
	grep -qi "no space" "$M/.dmfs/last-error" ||
		t_fail ".dmfs/last-error: $(cat "$M/.dmfs/last-error")"
	grep -q "new.bin" "$M/.dmfs/last-error" ||
		t_fail ".dmfs/last-error does not name the file: $(cat "$M/.dmfs/last-error")"

	# --- (b) over an existing object ---
	cmp "$L/old.bin" "$T_ROOT/old.bin" || t_fail "old.bin before"
	if cp "$BIG" "$L/old.bin" 2>"$T_ROOT/cp.err"; then
		t_fail "cp over old.bin succeeded"
	fi
	grep -q "No space left on device" "$T_ROOT/cp.err" ||
		t_fail "cp over old.bin: not ENOSPC: $(cat "$T_ROOT/cp.err")"
	alive "after (b)"
	t_store_cat old.bin | cmp - "$T_ROOT/old.bin" || t_fail "old.bin changed in the bucket"
	cmp "$L/old.bin" "$T_ROOT/old.bin" || t_fail "old.bin through the mount after ENOSPC"

	# --- (c) the space is released ---
	[ "$(staged)" = 0 ] || t_fail "staged copies left: $(ls -l "$T_ROOT/cache/staging")"
	cp "$T_ROOT/small.bin" "$L/small.bin" || t_fail "small write after ENOSPC"
	t_store_cat small.bin | cmp - "$T_ROOT/small.bin" || t_fail "small.bin in the bucket"
	cmp "$L/small.bin" "$T_ROOT/small.bin" || t_fail "small.bin through the mount"

	# --- (f) labels on a full disk ---
	fill_disk
	if setfattr -n user.x -v 1 "$L/small.bin" 2>"$T_ROOT/attr.err"; then
		t_log "setfattr on a full disk worked"
		[ "$(getfattr --only-values -n user.x "$L/small.bin")" = 1 ] ||
			t_fail "label set on a full disk reads back wrong"
	else
		t_log "setfattr on a full disk: $(cat "$T_ROOT/attr.err"); last-error: $(cat "$M/.dmfs/last-error")"
		grep -q "No space left on device" "$T_ROOT/attr.err" ||
			t_fail "setfattr on a full disk: $(cat "$T_ROOT/attr.err")"
	fi
	alive "after setfattr on a full disk"
	# and a write on a full disk: ENOSPC at once, nothing uploaded
	if cp "$T_ROOT/small.bin" "$L/full.bin" 2>"$T_ROOT/cp.err"; then
		t_fail "cp onto a full disk succeeded"
	fi
	grep -q "No space left on device" "$T_ROOT/cp.err" ||
		t_fail "cp onto a full disk: $(cat "$T_ROOT/cp.err")"
	! t_in_store full.bin || t_fail "full.bin in the bucket"
	# an append needs the object's bytes staged first: no room for them
	if echo more 2>"$T_ROOT/cp.err" >>"$L/old.bin"; then
		t_fail "append to old.bin on a full disk succeeded"
	fi
	grep -q "No space left on device" "$T_ROOT/cp.err" ||
		t_fail "append on a full disk: $(cat "$T_ROOT/cp.err")"
	t_store_cat old.bin | cmp - "$T_ROOT/old.bin" || t_fail "old.bin changed by a failed append"
	alive "after a write on a full disk"

	# --- a copy cut before the failed write is whole again ---
	write_until_enospc healed.bin heal || t_fail "write, ENOSPC, ftruncate, write again"
	# Byte for byte ($(...) would drop NUL bytes a hole left).
	printf 'whole again\n' | cmp - <(t_store_cat healed.bin) ||
		t_fail "healed.bin in the bucket: $(t_store_cat healed.bin | od -c | head -3)"
	rm -f "$T_ROOT/cache/filler"

	# --- (g) kill -9 after ENOSPC: nothing recovered ---
	write_until_enospc crash.bin kill || t_fail "write before kill"
	t_umount_killed "$M"
	rm -f "$T_ROOT/cache/filler"
	t_mount "$M" stat_ttl=30
	PID=$(t_status "$M" pid)
	sleep 0.5
	! t_in_store crash.bin || t_fail "a file cut short by ENOSPC was uploaded by recovery"
	! grep -q "recovered crash.bin" "$T_LOG" || t_fail "crash.bin recovered"
	[ "$(staged)" = 0 ] || t_fail "staged copies left after recovery: $(ls -l "$T_ROOT/cache/staging")"

	# --- (d), (e): the mount is healthy; a file bigger than the disk reads right ---
	t_put_file "$BIG" big.bin
	t_umount "$M"
	t_mount "$M" stat_ttl=30
	PID=$(t_status "$M" pid)
	cmp "$L/big.bin" "$BIG" || t_fail "big.bin read through a full cache"
	cmp "$L/big.bin" "$BIG" || t_fail "big.bin read again"
	cmp "$L/old.bin" "$T_ROOT/old.bin" || t_fail "old.bin after big reads"
	alive "after big reads"
	t_log "cache: $(t_status "$M" cache.bytes) bytes; disk: $(df --output=used,avail -k "$T_ROOT/cache" | tail -1) KiB used, free"
	# --- (h) ---
	cp "$T_ROOT/small.bin" "$L/after.bin" || t_fail "write after reading more than the disk holds"
	t_store_cat after.bin | cmp - "$T_ROOT/small.bin" || t_fail "after.bin in the bucket"
	for f in "$T_ROOT"/cache/lock.mdb "$T_ROOT"/cache/*/lock.mdb; do
		[ -e "$f" ] || continue
		# shellcheck disable=SC2046
		set -- $(stat -c '%s %b %B' "$f")
		[ $(($2 * $3)) -ge "$1" ] || t_fail "$f is sparse: $(($2 * $3)) of $1 bytes allocated"
	done

	# A fresh mount with an empty cache reads what was written.
	t_umount "$M"
	t_tmpfs_umount "$T_ROOT/cache"
	t_mount "$M"
	cmp "$L/small.bin" "$T_ROOT/small.bin" || t_fail "small.bin through a fresh mount"
	cmp "$L/old.bin" "$T_ROOT/old.bin" || t_fail "old.bin through a fresh mount"
	[ ! -e "$L/new.bin" ] || t_fail "new.bin exists"
	t_umount "$M"
	T_ALLOW_ERRORS=0
	t_log_reset
	t_backend_stop
done
t_done
