# shellcheck shell=bash
# tests/lib/common.sh - shared by the integration tests tNNNN-*.sh.
#
# A test sources this, then for each backend it can run on:
#
#	. "$(dirname "$0")/lib/common.sh"
#	for kind in $(t_backends); do
#		t_backend_start "$kind"
#		t_put_tree "$src"
#		t_mount "$T_ROOT/mnt" stat_ttl=1
#		...checks, t_fail "why" on a mismatch...
#		t_umount "$T_ROOT/mnt"
#		t_backend_stop
#	done
#	t_done
#
# Everything lives in its own work directory ($T_ROOT).  An EXIT trap
# unmounts what the test mounted, stops the server it started (by PID),
# and fails the test if dmfs logged an unexpected error or a sanitizer
# report appeared.  Exit 77 (skip) when no backend can run here.
#
# Settings: DMFS (the binary), DMFS_TEST_BACKENDS (default "rgw s3rver
# file"), DMFS_TEST_TMP (default /tmp), DMFS_TEST_KEEP=1 keeps $T_ROOT.

set -u
set -o pipefail

T_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${DMFS:=$T_SRC/dmfs}"
T_NAME=$(basename "$0" .sh)
T_ROOT=$(mktemp -d "${DMFS_TEST_TMP:-/tmp}/dmfs-$T_NAME.XXXXXX")
T_MOUNTS=()
T_PIDS=() # helper processes a test started (proxies): killed at exit
T_TMPFS=() # tmpfs mounts a test made (t_tmpfs): unmounted at exit
T_FAILED=0
T_KIND=
T_BUCKET=dmfs-test
T_STORE=
T_STORE_DIR=
T_MOUNT_OPTS=
T_LOG=$T_ROOT/dmfs.log
T_ALLOW_ERRORS=0 # set to 1 around steps that make dmfs log errors
T_RAN=0 # set by t_backend_start (or by a test with checks of its own)
# Sanitizer builds: reports go to files we look at, since the mount
# daemon's stderr is /dev/null.
export ASAN_OPTIONS="log_path=$T_ROOT/asan:detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="log_path=$T_ROOT/ubsan:print_stacktrace=1:${UBSAN_OPTIONS:-}"

. "$T_SRC/tests/lib/s3server.sh"

t_log() { printf '# %s: %s\n' "$T_NAME${T_KIND:+[$T_KIND]}" "$*"; }

# t_fail MESSAGE: the test fails now (the trap cleans up).
t_fail() {
	printf 'FAIL: %s%s: %s\n' "$T_NAME" "${T_KIND:+[$T_KIND]}" "$*" >&2
	T_FAILED=1
	exit 1
}

# t_skip MESSAGE: nothing here can run this test.
t_skip() {
	printf 'SKIP: %s: %s\n' "$T_NAME" "$*"
	exit 77
}

t_cleanup() {
	local rc=$? m f left
	trap - EXIT
	for m in "${T_MOUNTS[@]}"; do
		if mountpoint -q "$m" 2>/dev/null; then
			fusermount3 -u "$m" 2>/dev/null ||
				fusermount3 -u -z "$m" 2>/dev/null || true
		fi
	done
	for m in "${T_PIDS[@]}"; do kill "$m" 2>/dev/null || true; done
	t_wait_dmfs_exit
	# After the daemons that may have files open on them are gone.
	for m in "${T_TMPFS[@]}"; do
		if mountpoint -q "$m" 2>/dev/null; then
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		fi
	done
	left=$(pgrep -f "cache_dir=$T_ROOT/" || true)
	if [ -n "$left" ]; then
		# A mount daemon outlived its unmount: a leaked process.
		echo "FAIL: $T_NAME: dmfs processes left running: $left" >&2
		kill -9 $left 2>/dev/null || true
		rc=1
	fi
	s3server_stop
	for f in "$T_ROOT"/asan.* "$T_ROOT"/ubsan.*; do
		[ -e "$f" ] || continue
		echo "FAIL: $T_NAME: sanitizer report $f:" >&2
		head -60 "$f" >&2
		rc=1
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -f "$T_LOG" ]; then
		echo "--- last lines of the dmfs log ---" >&2
		tail -25 "$T_LOG" >&2
	fi
	if [ "${DMFS_TEST_KEEP:-0}" = 1 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; }; then
		echo "# work directory kept: $T_ROOT" >&2
	else
		rm -rf "$T_ROOT"
	fi
	exit "$rc"
}
trap t_cleanup EXIT

# Wait (bounded) for the mount daemons of this test to exit after unmount,
# so their sanitizer reports are written before we look.
t_wait_dmfs_exit() {
	local i pids
	for i in $(seq 50); do
		pids=$(pgrep -f "cache_dir=$T_ROOT/" || true)
		[ -z "$pids" ] && return 0
		sleep 0.1
	done
	return 0
}

# The backends to run: DMFS_TEST_BACKENDS that can run here.
t_backends() {
	local k out=""
	for k in ${DMFS_TEST_BACKENDS:-rgw s3rver file}; do
		case $k in
		file) out+=" file" ;;
		rgw | s3rver) s3server_available "$k" >/dev/null 2>&1 && out+=" $k" ;;
		esac
	done
	[ -n "$out" ] || t_skip "no backend available (run tests/setup-deps.sh)"
	echo "$out"
}

# t_backend_start KIND: a fresh, empty store of that kind.
t_backend_start() {
	T_KIND=$1
	T_RAN=1
	rm -rf "$T_ROOT/cache" "$T_ROOT/store"
	case $T_KIND in
	file)
		T_STORE_DIR=$T_ROOT/store
		mkdir -p "$T_STORE_DIR"
		T_STORE=file://$T_STORE_DIR
		T_MOUNT_OPTS=
		;;
	*)
		s3server_start "$T_KIND" "$T_ROOT/server.$T_KIND" >"$T_ROOT/server.log" 2>&1 ||
			{ cat "$T_ROOT/server.log" >&2; t_fail "cannot start $T_KIND"; }
		s3_aws s3 mb "s3://$T_BUCKET" >/dev/null || t_fail "make bucket"
		T_STORE=s3://$T_BUCKET/data
		T_MOUNT_OPTS=endpoint=$S3_ENDPOINT
		;;
	esac
	t_log "backend $T_KIND ready: $T_STORE"
}

t_backend_stop() {
	local m
	for m in "${T_MOUNTS[@]}"; do
		mountpoint -q "$m" 2>/dev/null && t_umount "$m"
	done
	t_wait_dmfs_exit
	[ "$T_KIND" = file ] || s3server_stop
	t_check_log
	T_KIND=
}

# t_put_tree DIR: upload the contents of DIR to the store root.
t_put_tree() {
	case $T_KIND in
	file) cp -a "$1/." "$T_STORE_DIR/" ;;
	*) s3_aws s3 cp --recursive --quiet --only-show-errors "$1" \
		"s3://$T_BUCKET/data/" || t_fail "upload $1" ;;
	esac
}

# t_put_file FILE KEY: upload one file (overwriting).
t_put_file() {
	case $T_KIND in
	file)
		mkdir -p "$(dirname "$T_STORE_DIR/$2")"
		# A new inode, as an S3 overwrite makes a new object.
		cp "$1" "$T_STORE_DIR/$2.tmp.$$" && mv "$T_STORE_DIR/$2.tmp.$$" "$T_STORE_DIR/$2"
		;;
	*) s3_aws s3 cp --quiet --only-show-errors "$1" "s3://$T_BUCKET/data/$2" ||
		t_fail "upload $2" ;;
	esac
}

# t_in_store KEY: whether KEY exists in the store (independent client:
# awscli, or the store directory for file://).
t_in_store() {
	case $T_KIND in
	file) [ -e "$T_STORE_DIR/$1" ] ;;
	*) s3_aws s3api head-object --bucket "$T_BUCKET" --key "data/$1" >/dev/null 2>&1 ;;
	esac
}

# t_store_cat KEY: the object KEY as the store has it, read with an
# independent client, to stdout; fails when it is absent.
t_store_cat() {
	case $T_KIND in
	file) cat "$T_STORE_DIR/$1" ;;
	*) s3_aws s3 cp --quiet --only-show-errors "s3://$T_BUCKET/data/$1" - ;;
	esac
}

# t_store_copy PREFIX DIR: the store's objects under PREFIX (a key prefix
# ending in '/', or empty for all), fetched with an independent client
# into a fresh DIR; dmfs's own .dmfs/ is left out.
t_store_copy() {
	rm -rf "$2"
	mkdir -p "$2"
	case $T_KIND in
	file) cp -a "$T_STORE_DIR/$1." "$2/" || t_fail "copy the store's $1" ;;
	*) s3_aws s3 cp --recursive --quiet --only-show-errors \
		"s3://$T_BUCKET/data/$1" "$2/" || t_fail "download bucket $1" ;;
	esac
	rm -rf "$2/.dmfs"
}

# t_s3_head KEY FIELD: one field of s3api head-object of KEY in the test
# bucket's store prefix: sha256 (x-amz-meta-dmfs-sha256), mode, stream
# (x-amz-meta-dmfs-stream), etag (unquoted), size; "-" when the object
# lacks it, "none" when there is no such key.  S3 backends only.
t_s3_head() {
	s3_aws s3api head-object --bucket "$T_BUCKET" --key "data/$1" 2>/dev/null |
		python3 -c 'import json,sys
h=json.load(sys.stdin); m=h.get("Metadata", {})
v={"sha256": m.get("dmfs-sha256"), "mode": m.get("mode"),
   "stream": m.get("dmfs-stream"), "etag": h.get("ETag", "").strip("\""),
   "size": h.get("ContentLength")}[sys.argv[1]]
print("-" if v is None else v)' "$2" 2>/dev/null || echo none
}

# t_tree_sums DIR: "sha256  ./relpath" of every file under DIR, sorted by
# path, to compare two trees byte for byte (names and contents).
t_tree_sums() {
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}

# t_mount MOUNTPOINT [OPT...]: mount the store with the test's cache and
# log; extra mount options as separate arguments.
t_mount() {
	local mnt=$1 opts
	shift
	mkdir -p "$mnt"
	opts="cache_dir=$T_ROOT/cache,log_file=$T_LOG"
	[ -n "$T_MOUNT_OPTS" ] && opts+=",$T_MOUNT_OPTS"
	for o in "$@"; do opts+=",$o"; done
	T_MOUNTS+=("$mnt")
	"$DMFS" mount "$T_STORE" "$mnt" -o "$opts" || t_fail "dmfs mount $T_STORE $mnt -o $opts"
	mountpoint -q "$mnt" || t_fail "$mnt is not a mount point after dmfs mount returned"
}

# t_umount_killed MOUNTPOINT: after a kill -9 of the mount's daemon, give
# it time to die, then detach the dead mount (a FUSE mount whose daemon is
# gone stays, answering "Transport endpoint is not connected").
t_umount_killed() {
	sleep 0.5
	fusermount3 -u -z "$1" 2>/dev/null || true
}

# t_tmpfs DIR SIZE: a tmpfs of SIZE (mount's size=, e.g. 48m) on DIR,
# unmounted at exit even when the test fails (and by t_tmpfs_umount).
# Skips the test when tmpfs cannot be mounted (not root).
t_tmpfs() {
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" 2>"$T_ROOT/tmpfs.err" ||
		t_skip "cannot mount a tmpfs: $(cat "$T_ROOT/tmpfs.err")"
	T_TMPFS+=("$1")
}

t_tmpfs_umount() {
	mountpoint -q "$1" 2>/dev/null || return 0
	umount "$1" || t_fail "cannot unmount the tmpfs on $1"
}

# t_dmfs CMD [ARGS...]: a store command (snapshot, commit, log, ...) on the
# test's store with its cache and endpoint: "$DMFS" CMD "$T_STORE" ARGS -o ...
# The store is the first argument after CMD; CACHE overrides the cache dir.
t_dmfs() {
	local cmd=$1 opts
	shift
	opts="cache_dir=${CACHE:-$T_ROOT/cache}"
	[ -n "$T_MOUNT_OPTS" ] && opts+=",$T_MOUNT_OPTS"
	"$DMFS" "$cmd" "$T_STORE" "$@" -o "$opts"
}

t_umount() {
	local i pids
	# The daemon of this mount point (t_mount passes "MNT -o OPTS").
	pids=$(pgrep -f -- " $1 -o " || true)
	for i in 1 2 3 4 5 6 7 8 9 10; do
		if fusermount3 -u "$1" 2>/dev/null; then
			# fusermount returns before the daemon has finished: wait, so
			# that what it still logs (a read-ahead cut short, a final
			# flush) belongs to this step, not to whatever the test does
			# next (stopping a proxy, resetting the log).
			t_wait_pids 300 $pids
			return 0
		fi
		sleep 0.3
	done
	t_fail "cannot unmount $1"
}

# t_wait_pids TENTHS PID...: wait until the processes have exited, at most
# TENTHS tenths of a second.
t_wait_pids() {
	local n=$1 p alive
	shift
	while [ "$n" -gt 0 ]; do
		alive=
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ -z "$alive" ] && return 0
		sleep 0.1
		n=$((n - 1))
	done
}

# t_status MOUNTPOINT KEY.KEY: one number from .dmfs/status.
t_status() {
	python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$1/.dmfs/status" "$2" || t_fail "cannot read $2 from $1/.dmfs/status"
}

# t_log_reset: after a step that was allowed to log errors: still fail on
# sanitizer reports, then start the log afresh.
t_log_reset() {
	local allow=$T_ALLOW_ERRORS
	T_ALLOW_ERRORS=1
	t_check_log
	T_ALLOW_ERRORS=$allow
	: >"$T_LOG"
}

# t_check_log: dmfs logged no error (unless the test allowed them).
t_check_log() {
	[ -f "$T_LOG" ] || return 0
	# Sanitizer reports (stderr of the daemon goes to the log) always fail.
	if grep -qE 'runtime error:|AddressSanitizer|LeakSanitizer' "$T_LOG"; then
		grep -E -A15 'runtime error:|AddressSanitizer|LeakSanitizer' "$T_LOG" | head -40 >&2
		t_fail "sanitizer report in the dmfs log"
	fi
	if [ "$T_ALLOW_ERRORS" = 0 ] && grep -q ' error: ' "$T_LOG"; then
		grep ' error: ' "$T_LOG" | head -5 >&2
		t_fail "dmfs logged errors"
	fi
	return 0
}

# t_make_file PATH SIZE_BYTES [SEED]: deterministic pseudo-random content.
t_make_file() {
	python3 - "$1" "$2" "${3:-1}" <<'PY'
import hashlib, sys
path, size, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3]
block = hashlib.sha512(seed.encode()).digest() * 1024  # 64 KiB
with open(path, "wb") as f:
    n = 0
    i = 0
    while n < size:
        chunk = hashlib.sha256(f"{seed}:{i}".encode()).digest() + block
        chunk = chunk[: min(len(chunk), size - n)]
        f.write(chunk)
        n += len(chunk)
        i += 1
PY
}

# t_done: the closing line that counts.
t_done() {
	t_check_log
	[ "$T_RAN" = 1 ] || t_skip "no backend this test applies to (DMFS_TEST_BACKENDS=${DMFS_TEST_BACKENDS:-})"
	echo "$T_NAME: 1 passed, 0 failed"
}
