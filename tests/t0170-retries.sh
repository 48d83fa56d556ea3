#!/bin/bash
# t0170-retries: transient S3 failures (503 SlowDown from a fault-injecting
# proxy in front of the server) are retried with backoff: every byte still
# reads right and .dmfs/status counts the retries.  Without retries, a
# throttled read fails with EAGAIN or EIO - never ENOENT, never wrong data.
. "$(dirname "$0")/lib/common.sh"

PROXY=${DELAY_PROXY:-$(dirname "$DMFS")/tests/tools/delay_proxy}
[ -x "$PROXY" ] || t_skip "no delay_proxy at $PROXY"
SRC=$T_ROOT/src
mkdir -p "$SRC/d"
t_make_file "$SRC/d/big.bin" 30000000 retry
for i in $(seq 20); do echo "file $i" >"$SRC/d/f$i.txt"; done

start_proxy() { # EVERY
	rm -f "$T_ROOT/proxy.port"
	"$PROXY" --listen 127.0.0.1:0 --upstream "127.0.0.1:$S3_PORT" --fail-every "$1" \
		--port-file "$T_ROOT/proxy.port" --quiet &
	PROXY_PID=$!
	T_PIDS+=("$PROXY_PID")
	for _ in $(seq 50); do [ -s "$T_ROOT/proxy.port" ] && break; sleep 0.1; done
	[ -s "$T_ROOT/proxy.port" ] || t_fail "proxy did not start"
	T_MOUNT_OPTS=endpoint=http://127.0.0.1:$(cat "$T_ROOT/proxy.port")
}
stop_proxy() { kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null || true; }

for kind in $(t_backends); do
	[ "$kind" = file ] && continue
	t_backend_start "$kind"
	t_put_tree "$SRC"
	M=$T_ROOT/mnt

	start_proxy 3
	t_mount "$M" retry_base_ms=10 retry_max_ms=100
	cmp "$M/live/d/big.bin" "$SRC/d/big.bin" || t_fail "big.bin through failures"
	for i in $(seq 20); do
		[ "$(cat "$M/live/d/f$i.txt")" = "file $i" ] || t_fail "f$i through failures"
	done
	r=$(t_status "$M" s3.retries)
	e=$(t_status "$M" s3.errors)
	t_log "$r retries, $e errors"
	[ "$r" -gt 0 ] || t_fail "no retries counted"
	[ "$e" = 0 ] || t_fail "$e requests failed despite retries"
	t_umount "$M"
	stop_proxy

	# No retries: failures surface as errors, never as missing files and
	# never as wrong data.  With every 2nd request refused a read may still
	# succeed (a refused listing is served from the cached one, a refused
	# prefetch is fetched again by the read).
	T_ALLOW_ERRORS=1
	start_proxy 2
	# an empty block cache, so the reads are GETs that can be refused
	rm -rf "$T_ROOT/cache-noretry"
	t_mount "$M" retries=0 stat_ttl=0 cache_dir=$T_ROOT/cache-noretry
	fails=0
	for i in $(seq 20); do
		if out=$(cat "$M/live/d/f$i.txt" 2>&1); then
			[ "$out" = "file $i" ] || t_fail "wrong data: $out"
		else
			fails=$((fails + 1))
			case $out in
			*"No such file"*) t_fail "a throttled read said ENOENT: $out" ;;
			*"Resource temporarily unavailable"* | *"Input/output error"*) ;;
			*) t_fail "unexpected error: $out" ;;
			esac
		fi
	done
	t_log "$fails of 20 small reads failed"
	# A failed read-ahead is fetched again by the read itself, so even a
	# big read may come through; if it fails, with EAGAIN/EIO, never with
	# other bytes.
	if ! out=$(cmp "$M/live/d/big.bin" "$SRC/d/big.bin" 2>&1); then
		case $out in
		*"Resource temporarily unavailable"* | *"Input/output error"*) ;;
		*) t_fail "a refused read of big.bin: $out" ;;
		esac
	fi
	grep -q "SlowDown" "$T_LOG" || t_fail "the log does not name SlowDown"
	t_umount "$M"
	stop_proxy
	t_log_reset
	T_ALLOW_ERRORS=0
	T_MOUNT_OPTS=
	t_backend_stop
done
t_done
