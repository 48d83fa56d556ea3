#!/bin/bash
# t0001-harness-servers: the test S3 servers themselves.  For each kind
# (rgw, s3rver): start it, make a bucket, put, list (including a key nested
# three levels deep, which must show as a common prefix at the root) and
# get an object with awscli, check s3server_kill_frontend, stop it, and
# check that no recorded process is left.  Then build tests/tools/delay_proxy
# and check that it relays, delays and fails requests.
#
# Exit status: 0 all passed, 1 a check failed, 77 a server kind could not
# run here (its packages are missing: run tests/setup-deps.sh); the kinds
# that can run are still tested then.
set -euo pipefail

srcdir=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/s3server.sh
. "$srcdir/tests/lib/s3server.sh"

passed=0
failed=0
skipped=0
proxy_pid=
workdir=$(mktemp -d "${TMPDIR:-/tmp}/dmfs-t0001.XXXXXX")

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	local rc=$?

	if [ -n "$proxy_pid" ]; then
		kill -TERM "$proxy_pid" 2>/dev/null || true
		wait "$proxy_pid" 2>/dev/null || true
	fi
	s3server_stop
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then
		rm -rf "$workdir"
	else
		echo "t0001: work directory kept: $workdir" >&2
	fi
}
trap cleanup EXIT

ok() {
	passed=$((passed + 1))
	echo "ok: $*"
}

not_ok() {
	failed=$((failed + 1))
	echo "FAILED: $*" >&2
}

# check DESCRIPTION COMMAND...: run COMMAND, count and print the result.
check() {
	local what=$1

	shift
	if "$@"; then
		ok "$what"
	else
		not_ok "$what"
	fi
}

# gone PID [STARTTIME]: the process has exited (a zombie counts as gone).
# shellcheck disable=SC2317 # called through check
gone() {
	! _s3server_alive "$@"
}

ms_since() {
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'
}

test_kind() {
	local kind=$1
	local dir=$workdir/$kind t0 out pidlines name pid st

	echo "== $kind"
	t0=$EPOCHREALTIME
	if ! s3server_start "$kind" "$dir"; then
		not_ok "$kind: s3server_start"
		return 0
	fi
	ok "$kind: started at $S3_ENDPOINT in $(ms_since "$t0") ms" \
		"(pids $S3SERVER_PIDS)"
	for pid in $S3SERVER_PIDS; do
		echo "   pid $pid $(cat "/proc/$pid/comm"):" \
			"$(awk '/^VmRSS/ { print $2, $3 }' "/proc/$pid/status")"
	done

	check "$kind: S3_KIND=$S3_KIND" [ "$S3_KIND" = "$kind" ]
	check "$kind: aws config under the work dir" \
		[ "$AWS_CONFIG_FILE" = "$dir/aws-config" ]
	check "$kind: s3 mb" s3_aws s3 mb s3://t0001-bucket

	printf 'hello from t0001\n' >"$dir/hello.txt"
	check "$kind: s3 cp (put)" \
		s3_aws s3 cp --quiet "$dir/hello.txt" s3://t0001-bucket/hello.txt
	check "$kind: s3 cp (put nested q/c/d/f.txt)" \
		s3_aws s3 cp --quiet "$dir/hello.txt" \
		s3://t0001-bucket/q/c/d/f.txt

	# shellcheck disable=SC2016 # JMESPath literals, not shell
	out=$(s3_aws s3api list-objects-v2 --bucket t0001-bucket \
		--delimiter / --output text \
		--query '[join(`,`, Contents[].Key), join(`,`, CommonPrefixes[].Prefix)]' \
		2>&1) || true
	echo "   root listing (keys, prefixes): $out"
	check "$kind: list root with delimiter: hello.txt and q/" \
		[ "$out" = "$(printf 'hello.txt\tq/')" ]

	# shellcheck disable=SC2016 # JMESPath literals, not shell
	out=$(s3_aws s3api list-objects-v2 --bucket t0001-bucket \
		--output text --query 'join(`,`, Contents[].Key)' 2>&1) || true
	check "$kind: flat listing: $out" [ "$out" = "hello.txt,q/c/d/f.txt" ]

	out=$(s3_aws s3api head-object --bucket t0001-bucket \
		--key hello.txt --query ContentLength --output text 2>&1) || true
	check "$kind: head-object size 17" [ "$out" = 17 ]

	check "$kind: s3 cp (get) returns the same bytes" \
		s3_aws s3 cp --quiet s3://t0001-bucket/q/c/d/f.txt "$dir/back.txt"
	check "$kind: content identical" cmp -s "$dir/hello.txt" "$dir/back.txt"

	out=$(s3_s3cmd ls s3://t0001-bucket/ 2>&1) || true
	check "$kind: s3cmd ls sees hello.txt" \
		grep -q 's3://t0001-bucket/hello.txt' <<<"$out"

	# The HTTP server alone goes away; the endpoint stops answering.
	pid=$S3SERVER_FRONTEND_PID
	s3server_kill_frontend
	check "$kind: kill_frontend stopped pid $pid" \
		gone "$pid"
	check "$kind: endpoint down after kill_frontend" \
		test "$(curl -q -s -o /dev/null -m 5 -w '%{http_code}' \
		"$S3_ENDPOINT/" || true)" = 000

	pidlines=$(cat "$dir/pids")
	t0=$EPOCHREALTIME
	s3server_stop
	ok "$kind: stopped in $(ms_since "$t0") ms"
	s3server_stop
	ok "$kind: second s3server_stop is harmless"
	while read -r name pid st; do
		[ -n "$pid" ] || continue
		check "$kind: $name (pid $pid) is gone" \
			gone "$pid" "$st"
	done <<<"$pidlines"
	check "$kind: pids file empty" test ! -s "$dir/pids"
	unset S3SERVER_DIR
}

# tests/tools/delay_proxy against whichever server is up.
test_proxy() {
	local kind=$1 dir=$workdir/proxy bin t0 ttfb port code i

	echo "== delay_proxy (upstream: $kind)"
	if ! command -v cc >/dev/null 2>&1; then
		echo "   no C compiler: skipped"
		return 0
	fi
	mkdir -p "$dir"
	bin=$dir/delay_proxy
	check "delay_proxy builds without warnings" \
		cc -O2 -Wall -Wextra -Werror -pthread -o "$bin" \
		"$srcdir/tests/tools/delay_proxy.c"
	[ -x "$bin" ] || return 0
	if ! s3server_start "$kind" "$dir/server"; then
		not_ok "proxy: s3server_start $kind"
		return 0
	fi

	# 100 ms on every response.
	"$bin" --listen 127.0.0.1:0 --upstream "$S3_HOST:$S3_PORT" \
		--latency-ms 100 --port-file "$dir/port" --quiet &
	proxy_pid=$!
	for ((i = 0; i < 100; i++)); do
		[ -s "$dir/port" ] && break
		sleep 0.02
	done
	port=$(cat "$dir/port")
	check "delay_proxy: s3 mb through the proxy" \
		env S3_ENDPOINT="http://127.0.0.1:$port" \
		bash -c ". '$srcdir/tests/lib/s3server.sh'; s3_aws s3 mb s3://proxied"
	ttfb=$(curl -q -s -o /dev/null -w '%{time_starttransfer}' \
		"http://127.0.0.1:$port/") || ttfb=0
	echo "   time to first byte through a 100 ms proxy: $ttfb s"
	check "delay_proxy: first byte after >= 100 ms" \
		awk -v t="$ttfb" 'BEGIN { exit !(t >= 0.1 && t < 1) }'
	t0=$EPOCHREALTIME
	kill -TERM "$proxy_pid"
	wait "$proxy_pid" && code=0 || code=$?
	proxy_pid=
	check "delay_proxy: exits with 0 on SIGTERM ($(ms_since "$t0") ms)" \
		[ "$code" = 0 ]

	# Every 2nd request fails with 503 SlowDown.
	rm -f "$dir/port"
	"$bin" --listen 127.0.0.1:0 --upstream "$S3_HOST:$S3_PORT" \
		--fail-every 2 --port-file "$dir/port" --quiet &
	proxy_pid=$!
	for ((i = 0; i < 100; i++)); do
		[ -s "$dir/port" ] && break
		sleep 0.02
	done
	port=$(cat "$dir/port")
	code=$(for i in 1 2 3 4; do
		curl -q -s -o /dev/null -w '%{http_code} ' \
			"http://127.0.0.1:$port/" || true
	done)
	echo "   status codes with --fail-every 2: $code"
	check "delay_proxy: --fail-every 2 gives 200 503 200 503" \
		[ "$code" = "200 503 200 503 " ]
	kill -TERM "$proxy_pid"
	wait "$proxy_pid" || true
	proxy_pid=
	s3server_stop
	unset S3SERVER_DIR
}

available=()
for kind in rgw s3rver; do
	if s3server_available "$kind"; then
		available+=("$kind")
	else
		echo "== $kind: skipped (packages missing; run tests/setup-deps.sh)"
		skipped=$((skipped + 1))
	fi
done
for kind in "${available[@]}"; do
	test_kind "$kind"
done
if [ ${#available[@]} -gt 0 ]; then
	test_proxy "${available[-1]}"
fi

echo "t0001: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || exit 1
[ "$skipped" -eq 0 ] || exit 77
exit 0
