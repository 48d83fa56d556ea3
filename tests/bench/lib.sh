# tests/bench/lib.sh - what the benchmark scripts share, sourced by each
# once its options are parsed (it needs SRC; SERVER and LATENCY for
# bench_server_start): a work directory that goes away at exit with the
# mounts and processes in it, the S3 server with the delay proxy in front,
# and the small timing helpers.  Brings in tests/lib/s3server.sh.

# bench_workdir NAME: $W, a new /tmp/NAME.XXXXXX, removed at exit after
# unmounting every MOUNTS entry, killing every PIDS entry and stopping the
# server.
bench_workdir() {
	W=$(mktemp -d "/tmp/$1.XXXXXX")
	MOUNTS=() PIDS=()
	trap bench_cleanup EXIT
}
bench_cleanup() {
	local m p
	for m in "${MOUNTS[@]}"; do fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	s3server_stop
	rm -rf "$W"
}
. "$SRC/tests/lib/s3server.sh"

# bench_args --flag=VAR ... -- ARGS...: each "--flag VALUE" in ARGS sets
# VAR (a trailing "ms" dropped from --latency); anything else prints the
# usage and exits 2.  Then what every benchmark needs: root (drop_caches,
# FUSE) and a built dmfs at $DMFS.
bench_args() {
	local specs=() spec name usage=
	while [ "$1" != -- ]; do
		specs+=("$1")
		usage+=" [${1%%=*} ${1#*=}]"
		shift
	done
	shift
	while [ $# -gt 0 ]; do
		name=
		for spec in "${specs[@]}"; do
			[ "${spec%%=*}" = "$1" ] && name=${spec#*=}
		done
		if [ -z "$name" ] || [ $# -lt 2 ]; then
			echo "usage: $0$usage" >&2
			exit 2
		fi
		if [ "$1" = --latency ]; then printf -v "$name" '%s' "${2%ms}"; else printf -v "$name" '%s' "$2"; fi
		shift 2
	done
	[ "$(id -u)" = 0 ] || { echo "$(basename "$0"): run as root (drop_caches, FUSE)" >&2; exit 1; }
	[ -x "$DMFS" ] || { echo "$(basename "$0"): build dmfs first ($DMFS)" >&2; exit 1; }
}

log() { echo "# $*" >&2; }
now() { date +%s.%N; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# bench_server_start: $SERVER with its data under $W/server (its output in
# $W/server.log, shown when it fails to start) and ENDPOINT set to where
# the mounts reach it: with LATENCY (ms) other than 0, tests/tools/
# delay_proxy in front of it, every response that much later, as a
# far-away S3 would answer.
bench_server_start() {
	s3server_start "$SERVER" "$W/server" >"$W/server.log" 2>&1 || { cat "$W/server.log"; exit 1; }
	ENDPOINT=$S3_ENDPOINT
	if [ "${LATENCY:-0}" != 0 ]; then
		cc -O2 -Wall -Wextra -pthread -o "$W/delay_proxy" "$SRC/tests/tools/delay_proxy.c"
		"$W/delay_proxy" --listen 127.0.0.1:0 --upstream "127.0.0.1:$S3_PORT" \
			--latency-ms "$LATENCY" --port-file "$W/proxy.port" --quiet &
		PIDS+=($!)
		for _ in $(seq 50); do [ -s "$W/proxy.port" ] && break; sleep 0.1; done
		ENDPOINT=http://127.0.0.1:$(cat "$W/proxy.port")
		log "latency: +$LATENCY ms per response through tests/tools/delay_proxy at $ENDPOINT"
	fi
}

# bench_aws_parallel: awscli uploads with 32 requests at a time (the data
# sets are many small files).
bench_aws_parallel() {
	cat >>"$AWS_CONFIG_FILE" <<CFG
    max_concurrent_requests = 32
CFG
}

# bench_s3fs_passwd: $W/passwd, the server's keys as s3fs reads them.
bench_s3fs_passwd() {
	printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$W/passwd"
	chmod 600 "$W/passwd"
}

# bench_mount_rclone MNT MODE: rclone mount of the bucket $B at MNT with
# --vfs-cache-mode MODE, waited for.
bench_mount_rclone() {
	(unset AWS_CA_BUNDLE
	RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ENDPOINT=$ENDPOINT \
	RCLONE_CONFIG_B_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_B_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
	RCLONE_CONFIG_B_FORCE_PATH_STYLE=true \
	rclone mount "b:$B" "$1" --vfs-cache-mode "$2" --cache-dir "$W/cache.rclone" --daemon \
		--log-file "$W/rclone.log")
	for _ in $(seq 100); do mountpoint -q "$1" && return 0; sleep 0.1; done
	return 1
}
