# shellcheck shell=bash
# tests/lib/s3server.sh - run a real S3 server on 127.0.0.1 for a test.
#
# Source it from a bash test:
#
#	. "$srcdir/tests/lib/s3server.sh"
#	s3server_available rgw || exit 77	# packages missing: skip
#	trap s3server_stop EXIT
#	s3server_start rgw "$workdir"		# or: s3rver
#	s3_aws s3 mb s3://bucket
#	s3_aws s3 cp file s3://bucket/key
#	...
#	s3server_stop
#
# Kinds:
#   rgw     Ceph RADOS Gateway (Debian radosgw): a one-monitor, one-OSD
#           cluster with the OSD's data in memory (memstore), no mgr, and
#           radosgw with the beast frontend.  Every file it uses (config,
#           keyrings, mon/osd/rgw data, logs, admin sockets) is under the
#           work directory; nothing is read from /etc/ceph.
#   s3rver  npm s3rver 3.7.1 as installed and patched by tests/setup-deps.sh,
#           run with NODE_OPTIONS=--openssl-legacy-provider (Node >= 17
#           breaks its continuation tokens otherwise).
#
# s3server_start exports:
#   S3_KIND                 rgw | s3rver
#   S3_ENDPOINT             http://127.0.0.1:PORT (path-style addressing)
#   S3_HOST, S3_PORT        127.0.0.1 and PORT (e.g. for tests/tools/delay_proxy)
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY  the test user's keys
#   AWS_DEFAULT_REGION, AWS_REGION            us-east-1
#   AWS_EC2_METADATA_DISABLED=true
#   AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE  files under the work dir
#                           (path-style addressing, no pager), so nothing
#                           from ~/.aws is used
#   AWS_PAGER=""
#   S3SERVER_DIR            the work directory
#   CEPH_CONF               (rgw only) WORKDIR/ceph.conf
# and sets (not exported) S3SERVER_PIDS ("PID PID ..." in start order) and
# S3SERVER_FRONTEND_PID (radosgw or node).  WORKDIR/pids has one line per
# process: "NAME PID STARTTIME" (STARTTIME from /proc/PID/stat, so a reused
# PID is never signalled).
#
# Functions:
#   s3server_available KIND      0 if KIND can run here (packages present)
#   s3server_start KIND WORKDIR  start, wait until S3 answers, create the user
#   s3server_stop [WORKDIR]      stop the recorded processes (radosgw, then the
#                                OSD, then the monitor); safe to call twice and
#                                from an EXIT trap; always returns 0
#   s3server_kill_frontend       stop only the HTTP server (radosgw or node),
#                                for "server down" tests
#   s3_aws ARGS...               aws --endpoint-url "$S3_ENDPOINT" ARGS...
#   s3_s3cmd ARGS...             s3cmd with a config file for the server
#   s3server_log_tail [N]        the last N lines of the server logs
#
# Settings (environment):
#   DMFS_TEST_TOOLS          where setup-deps.sh put npm tools
#                            (default /var/lib/dmfs-test-tools)
#   DMFS_S3RVER_DIR          s3rver's npm prefix (default $DMFS_TEST_TOOLS/s3rver)
#   DMFS_S3RVER_SILENT=1     no per-request log lines from s3rver
#   DMFS_RGW_MEMSTORE_BYTES  the OSD's in-memory capacity (default 3 GiB)
#   DMFS_S3SERVER_TIMEOUT    seconds to wait for the server to start (60)
#   DMFS_S3SERVER_STOP_TIMEOUT  seconds between TERM and KILL (10)
#   DMFS_AWS                 the aws program (default /usr/bin/aws, Debian's
#                            awscli, else the first aws in PATH)

S3SERVER_PIDS=${S3SERVER_PIDS:-}
S3SERVER_FRONTEND_PID=${S3SERVER_FRONTEND_PID:-}

_s3server_msg() {
	echo "s3server: $*" >&2
}

# Debian's python3 when there is one: a version manager's shim in PATH can
# take a tenth of a second to start.
_s3server_python() {
	if [ -x /usr/bin/python3 ]; then
		echo /usr/bin/python3
	else
		echo python3
	fi
}

_s3server_tools() {
	echo "${DMFS_TEST_TOOLS:-/var/lib/dmfs-test-tools}"
}

_s3server_s3rver_js() {
	local prefix=${DMFS_S3RVER_DIR:-$(_s3server_tools)/s3rver}
	echo "$prefix/node_modules/s3rver/bin/s3rver.js"
}

_s3server_aws_bin() {
	if [ -n "${DMFS_AWS:-}" ]; then
		echo "$DMFS_AWS"
	elif [ -x /usr/bin/aws ]; then
		echo /usr/bin/aws
	else
		command -v aws
	fi
}

# s3server_available KIND: can KIND run on this machine?  Prints why not.
s3server_available() {
	local kind=${1:-} prog missing=""
	case $kind in
	rgw)
		for prog in ceph-mon ceph-osd radosgw radosgw-admin ceph \
			ceph-authtool monmaptool; do
			command -v "$prog" >/dev/null 2>&1 || missing+=" $prog"
		done
		;;
	s3rver)
		command -v node >/dev/null 2>&1 || missing+=" node"
		[ -f "$(_s3server_s3rver_js)" ] ||
			missing+=" $(_s3server_s3rver_js)"
		;;
	*)
		_s3server_msg "unknown server kind '$kind' (rgw or s3rver)"
		return 1
		;;
	esac
	for prog in curl python3; do
		command -v "$prog" >/dev/null 2>&1 || missing+=" $prog"
	done
	_s3server_aws_bin >/dev/null 2>&1 || missing+=" aws"
	if [ -n "$missing" ]; then
		_s3server_msg "$kind unavailable, missing:$missing" \
			"(run tests/setup-deps.sh)"
		return 1
	fi
	return 0
}

# _s3server_port_free PORT: nothing listens on 127.0.0.1:PORT and it can be
# bound.
_s3server_port_free() {
	"$(_s3server_python)" -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.close()' "$1" 2>/dev/null
}

# _s3server_free_port: a free port in 20000-31999, below Linux's default
# ephemeral range so that client sockets do not take it in the meantime.
_s3server_free_port() {
	local i port
	for i in $(seq 1 200); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
		if _s3server_port_free "$port"; then
			echo "$port"
			return 0
		fi
	done
	_s3server_msg "no free port found on 127.0.0.1"
	return 1
}

# _s3server_starttime PID: field 22 of /proc/PID/stat (start time in ticks).
_s3server_starttime() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	# The command name (field 2) may hold spaces: cut after its ')'.
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	echo "${20}"
}

# _s3server_alive PID [STARTTIME]: the process exists, is not a zombie,
# and (if given) started at STARTTIME.
_s3server_alive() {
	local pid=$1 want=${2:-} state
	state=$(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' \
		"/proc/$pid/status" 2>/dev/null) || return 1
	[ -n "$state" ] || return 1
	case $state in Z | X | x) return 1 ;; esac
	[ -z "$want" ] || [ "$(_s3server_starttime "$pid")" = "$want" ]
}

# _s3server_record NAME PID: remember a started process.
_s3server_record() {
	local name=$1 pid=$2 st
	st=$(_s3server_starttime "$pid") || st=0
	echo "$name $pid $st" >>"$S3SERVER_DIR/pids"
	S3SERVER_PIDS="${S3SERVER_PIDS:+$S3SERVER_PIDS }$pid"
}

# _s3server_kill_wait NAME PID STARTTIME: TERM, wait, then KILL.
_s3server_kill_wait() {
	local name=$1 pid=$2 st=$3 i limit
	_s3server_alive "$pid" "$st" || return 0
	limit=$((${DMFS_S3SERVER_STOP_TIMEOUT:-10} * 20))
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < limit; i++)); do
		_s3server_alive "$pid" "$st" || return 0
		sleep 0.05
	done
	_s3server_msg "$name (pid $pid) ignored SIGTERM for" \
		"${DMFS_S3SERVER_STOP_TIMEOUT:-10} s; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		_s3server_alive "$pid" "$st" || return 0
		sleep 0.05
	done
	_s3server_msg "$name (pid $pid) still there after SIGKILL"
	return 1
}

# _s3server_stop_names DIR NAME...: stop the recorded processes with these
# names, in this order, and drop them from DIR/pids.
_s3server_stop_names() {
	local dir=$1 want name pid st keep
	shift
	[ -f "$dir/pids" ] || return 0
	for want in "$@"; do
		while read -r name pid st; do
			[ "$name" = "$want" ] || continue
			_s3server_kill_wait "$name" "$pid" "$st" || true
		done <"$dir/pids"
	done
	keep=$(while read -r name pid st; do
		for want in "$@"; do
			[ "$name" != "$want" ] || continue 2
		done
		echo "$name $pid $st"
	done <"$dir/pids")
	if [ -n "$keep" ]; then
		echo "$keep" >"$dir/pids"
	else
		: >"$dir/pids"
	fi
	S3SERVER_PIDS=$(while read -r name pid st; do echo "$pid"; done \
		<"$dir/pids" | tr '\n' ' ')
	S3SERVER_PIDS=${S3SERVER_PIDS% }
}

# s3server_log_tail [N]: print the last N (default 30) lines of each log
# (the daemons' own logs and their stdout/stderr), to stderr.
s3server_log_tail() {
	local n=${1:-30} f
	[ -n "${S3SERVER_DIR:-}" ] || return 0
	for f in "$S3SERVER_DIR"/log/*.log "$S3SERVER_DIR"/log/*.out; do
		[ -s "$f" ] || continue
		case $f in */ceph.audit.log) continue ;; esac
		echo "----- tail -n $n $f" >&2
		tail -n "$n" "$f" >&2
	done
}

# _s3server_wait_http URL PID DEADLINE: wait until URL answers HTTP (any
# status) while PID lives.
_s3server_wait_http() {
	local url=$1 pid=$2 deadline=$3 code
	while :; do
		code=$(curl -q -s -o /dev/null -m 2 -w '%{http_code}' "$url" \
			2>/dev/null) || code=000
		[ "$code" = 000 ] || return 0
		if ! _s3server_alive "$pid"; then
			_s3server_msg "server process $pid exited before answering"
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			_s3server_msg "no HTTP answer from $url within" \
				"${DMFS_S3SERVER_TIMEOUT:-60} s"
			return 1
		fi
		sleep 0.1
	done
}

_s3server_random_hex() {
	od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# _s3server_client_files: awscli and s3cmd configuration under the work dir.
_s3server_client_files() {
	local d=$S3SERVER_DIR
	cat >"$d/aws-config" <<EOF
[default]
region = us-east-1
cli_pager =
s3 =
    addressing_style = path
EOF
	cat >"$d/aws-credentials" <<EOF
[default]
aws_access_key_id = $AWS_ACCESS_KEY_ID
aws_secret_access_key = $AWS_SECRET_ACCESS_KEY
EOF
	cat >"$d/s3cfg" <<EOF
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = $S3_HOST:$S3_PORT
host_bucket = $S3_HOST:$S3_PORT
bucket_location = us-east-1
use_https = False
signature_v2 = False
check_ssl_certificate = False
EOF
	chmod 600 "$d/aws-credentials" "$d/s3cfg"
	export AWS_CONFIG_FILE=$d/aws-config
	export AWS_SHARED_CREDENTIALS_FILE=$d/aws-credentials
	export AWS_PAGER=""
}

# --- s3rver --------------------------------------------------------------------

_s3server_start_s3rver() {
	local d=$S3SERVER_DIR js deadline pid silent=()
	js=$(_s3server_s3rver_js)
	if ! grep -q 'dmfs-test-patch' \
		"${js%/bin/s3rver.js}/lib/stores/filesystem.js" 2>/dev/null; then
		_s3server_msg "s3rver at ${js%/bin/s3rver.js} is not patched" \
			"(nested common prefixes): run tests/setup-deps.sh"
		return 1
	fi
	[ "${DMFS_S3RVER_SILENT:-0}" = 0 ] || silent=(--silent)
	mkdir -p "$d/s3rver-data" "$d/log"
	S3_PORT=$(_s3server_free_port) || return 1
	NODE_OPTIONS="--openssl-legacy-provider${NODE_OPTIONS:+ $NODE_OPTIONS}" \
		node "$js" -d "$d/s3rver-data" -a 127.0.0.1 -p "$S3_PORT" \
		--no-vhost-buckets "${silent[@]}" \
		</dev/null >>"$d/log/s3rver.log" 2>&1 &
	pid=$!
	disown "$pid" 2>/dev/null || true
	_s3server_record node "$pid"
	S3SERVER_FRONTEND_PID=$pid
	deadline=$((SECONDS + ${DMFS_S3SERVER_TIMEOUT:-60}))
	_s3server_wait_http "http://127.0.0.1:$S3_PORT/" "$pid" "$deadline" ||
		return 1
	# s3rver knows exactly one account.
	AWS_ACCESS_KEY_ID=S3RVER
	AWS_SECRET_ACCESS_KEY=S3RVER
}

# --- Ceph RGW -------------------------------------------------------------------

_s3server_ceph() {
	timeout "${_S3SERVER_CEPH_TIMEOUT:-60}" ceph -c "$CEPH_CONF" \
		--connect-timeout 30 "$@"
}

_s3server_start_rgw() {
	local d=$S3SERVER_DIR conf run mon_port fsid osd_uuid osd_id deadline
	local pid out bytes=${DMFS_RGW_MEMSTORE_BYTES:-3221225472}
	local akey skey

	case $d in
	*[[:space:]\;\#\$]*)
		_s3server_msg "work directory '$d' must not contain spaces," \
			"';', '#' or '\$' (ceph.conf)"
		return 1
		;;
	esac
	deadline=$((SECONDS + ${DMFS_S3SERVER_TIMEOUT:-60}))
	mkdir -p "$d/log" "$d/keyring" "$d/mon" "$d/osd/ceph-0" "$d/rgw" \
		"$d/crash" "$d/tmp"
	# Unix socket paths are limited to 107 bytes; keep the admin sockets
	# in a short directory if the work directory is long.
	run=$d/run
	if [ $((${#run} + 40)) -gt 107 ]; then
		run=$(mktemp -d /tmp/dmfs-ceph-run.XXXXXX) || return 1
		ln -sfn "$run" "$d/run"
		echo "$run" >"$d/run-tmpdir"
	else
		mkdir -p "$run"
	fi

	mon_port=$(_s3server_free_port) || return 1
	S3_PORT=$(_s3server_free_port) || return 1
	while [ "$S3_PORT" = "$mon_port" ]; do
		S3_PORT=$(_s3server_free_port) || return 1
	done
	fsid=$(cat /proc/sys/kernel/random/uuid)
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	conf=$d/ceph.conf
	export CEPH_CONF=$conf

	cat >"$conf" <<EOF
# Written by tests/lib/s3server.sh: a throw-away one-node cluster.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $d/keyring/\$cluster.\$name.keyring
run dir = $run
admin socket = $run/\$cluster-\$name.\$pid.asok
pid file =
log file = $d/log/\$cluster-\$name.log
log to stderr = false
err to stderr = true
crash dir = $d/crash
tmp dir = $d/tmp
mon data = $d/mon/\$cluster-\$id
osd data = $d/osd/\$cluster-\$id
rgw data = $d/rgw
mon cluster log file = $d/log/\$cluster.\$channel.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
mon allow pool delete = true

[mon]
keyring = $d/mon/\$cluster-\$id/keyring
admin socket = $run/\$cluster-\$name.asok
paxos propose interval = 0.05
paxos min wait = 0.01
mon data avail warn = 2
mon data avail crit = 1

[osd]
keyring = $d/osd/\$cluster-\$id/keyring
admin socket = $run/\$cluster-\$name.asok
osd objectstore = memstore
memstore device bytes = $bytes
osd crush update on start = true

[client.rgw.a]
admin socket = $run/\$cluster-\$name.asok
rgw frontends = beast endpoint=127.0.0.1:$S3_PORT
rgw dns name = localhost
rgw enable usage log = false
rgw dynamic resharding = false
EOF

	# Keys: every entity's key goes into the monitor's keyring before
	# --mkfs, so the cluster starts with its whole auth database and no
	# "ceph auth" round trips are needed.
	local kr=$d/keyring mkr=$d/keyring/mon.keyring
	# shellcheck disable=SC2015 # any step failing is the same failure
	{
		ceph-authtool "$mkr" --create-keyring --gen-key -n mon. \
			--cap mon 'allow *' &&
			ceph-authtool "$kr/ceph.client.admin.keyring" \
				--create-keyring --gen-key -n client.admin \
				--cap mon 'allow *' --cap osd 'allow *' \
				--cap mds 'allow *' --cap mgr 'allow *' &&
			ceph-authtool "$kr/ceph.client.rgw.a.keyring" \
				--create-keyring --gen-key -n client.rgw.a \
				--cap mon 'allow rw' --cap osd 'allow rwx' &&
			ceph-authtool "$d/osd/ceph-0/keyring" --create-keyring \
				--gen-key -n osd.0 --cap mon 'allow profile osd' \
				--cap osd 'allow *' --cap mgr 'allow profile osd' &&
			ceph-authtool "$mkr" --import-keyring \
				"$kr/ceph.client.admin.keyring" &&
			ceph-authtool "$mkr" --import-keyring \
				"$kr/ceph.client.rgw.a.keyring" &&
			ceph-authtool "$mkr" --import-keyring \
				"$d/osd/ceph-0/keyring"
	} >>"$d/log/mkfs.log" 2>&1 &&
		monmaptool -c "$conf" --create --fsid "$fsid" \
			--addv a "[v2:127.0.0.1:$mon_port]" "$d/monmap" \
			>>"$d/log/mkfs.log" 2>&1 &&
		ceph-mon -c "$conf" --mkfs -i a --monmap "$d/monmap" \
			--keyring "$mkr" >>"$d/log/mkfs.log" 2>&1 || {
		_s3server_msg "creating the monitor failed"
		return 1
	}

	ceph-mon -c "$conf" -f -i a </dev/null >>"$d/log/mon.a.out" 2>&1 &
	pid=$!
	disown "$pid" 2>/dev/null || true
	_s3server_record ceph-mon "$pid"

	# The OSD: allocate its id (waits until the monitor is up), then mkfs.
	_S3SERVER_CEPH_TIMEOUT=$((deadline - SECONDS))
	if ! osd_id=$(_s3server_ceph osd new "$osd_uuid" 0 2>>"$d/log/mkfs.log"); then
		_s3server_msg "ceph osd new failed (monitor not answering?)"
		return 1
	fi
	if [ "$osd_id" != 0 ]; then
		_s3server_msg "ceph osd new returned id '$osd_id', expected 0"
		return 1
	fi
	if ! ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" \
		</dev/null >>"$d/log/mkfs.log" 2>&1; then
		_s3server_msg "ceph-osd --mkfs failed"
		return 1
	fi
	ceph-osd -c "$conf" -f -i 0 </dev/null >>"$d/log/osd.0.out" 2>&1 &
	pid=$!
	disown "$pid" 2>/dev/null || true
	_s3server_record ceph-osd "$pid"

	# radosgw creates its pools itself and listens once they are usable.
	radosgw -c "$conf" -f -n client.rgw.a \
		</dev/null >>"$d/log/rgw.a.out" 2>&1 &
	pid=$!
	disown "$pid" 2>/dev/null || true
	_s3server_record radosgw "$pid"
	S3SERVER_FRONTEND_PID=$pid
	_s3server_wait_http "http://127.0.0.1:$S3_PORT/" "$pid" "$deadline" ||
		return 1

	akey=DMFS$(_s3server_random_hex 8 | tr 'a-f' 'A-F')
	skey=$(_s3server_random_hex 20)
	if ! out=$(timeout $((deadline - SECONDS > 10 ? deadline - SECONDS : 10)) \
		radosgw-admin -c "$conf" user create --uid=test \
		--display-name=test --access-key="$akey" --secret="$skey" \
		2>&1); then
		_s3server_msg "radosgw-admin user create failed: $out"
		return 1
	fi
	AWS_ACCESS_KEY_ID=$akey
	AWS_SECRET_ACCESS_KEY=$skey
}

# s3server_start KIND WORKDIR
s3server_start() {
	local kind=${1:-} dir=${2:-} t0=${EPOCHREALTIME:-$SECONDS} t1

	if [ -z "$kind" ] || [ -z "$dir" ]; then
		_s3server_msg "usage: s3server_start rgw|s3rver WORKDIR"
		return 2
	fi
	if [ -n "${S3SERVER_DIR:-}" ] && [ -s "$S3SERVER_DIR/pids" ]; then
		_s3server_msg "a server is already running from $S3SERVER_DIR;" \
			"call s3server_stop first"
		return 1
	fi
	s3server_available "$kind" || return 1
	mkdir -p "$dir" || return 1
	S3SERVER_DIR=$(cd "$dir" && pwd) || return 1
	export S3SERVER_DIR
	if [ -s "$S3SERVER_DIR/pids" ]; then
		_s3server_msg "$S3SERVER_DIR/pids lists running processes;" \
			"call s3server_stop $S3SERVER_DIR first"
		return 1
	fi
	: >"$S3SERVER_DIR/pids"
	S3SERVER_PIDS=
	S3SERVER_FRONTEND_PID=

	if ! "_s3server_start_$kind"; then
		_s3server_msg "starting $kind in $S3SERVER_DIR failed"
		s3server_log_tail 30
		s3server_stop
		return 1
	fi

	export S3_KIND=$kind
	export S3_HOST=127.0.0.1
	export S3_PORT
	export S3_ENDPOINT=http://127.0.0.1:$S3_PORT
	export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	export AWS_DEFAULT_REGION=us-east-1
	export AWS_REGION=us-east-1
	export AWS_EC2_METADATA_DISABLED=true
	unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
	_s3server_client_files
	t1=${EPOCHREALTIME:-$SECONDS}
	_s3server_msg "$kind answering at $S3_ENDPOINT after" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s" \
		"(pids: $S3SERVER_PIDS)"
}

# s3server_stop [WORKDIR]: stop what s3server_start recorded.
# shellcheck disable=SC2120 # WORKDIR is optional
s3server_stop() {
	local dir=${1:-${S3SERVER_DIR:-}} tmp
	[ -n "$dir" ] || return 0
	[ -d "$dir" ] || return 0
	_s3server_stop_names "$dir" radosgw node ceph-osd ceph-mon || true
	if [ -f "$dir/run-tmpdir" ]; then
		tmp=$(cat "$dir/run-tmpdir")
		case $tmp in
		/tmp/dmfs-ceph-run.*) rm -rf "$tmp" ;;
		esac
		rm -f "$dir/run-tmpdir" "$dir/run"
	fi
	if [ "$dir" = "${S3SERVER_DIR:-}" ]; then
		S3SERVER_PIDS=
		S3SERVER_FRONTEND_PID=
	fi
	return 0
}

# s3server_kill_frontend: stop the HTTP server only (radosgw or node); the
# rest keeps running until s3server_stop.
s3server_kill_frontend() {
	[ -n "${S3SERVER_DIR:-}" ] || {
		_s3server_msg "no server started"
		return 1
	}
	_s3server_stop_names "$S3SERVER_DIR" radosgw node
	S3SERVER_FRONTEND_PID=
}

# s3_aws ARGS...: awscli against the test server.
s3_aws() {
	if [ -z "${S3_ENDPOINT:-}" ]; then
		_s3server_msg "s3_aws: no server started"
		return 1
	fi
	AWS_PAGER="" "$(_s3server_aws_bin)" --endpoint-url "$S3_ENDPOINT" "$@"
}

# s3_s3cmd ARGS...: s3cmd against the test server.
s3_s3cmd() {
	if [ -z "${S3SERVER_DIR:-}" ] || [ ! -f "$S3SERVER_DIR/s3cfg" ]; then
		_s3server_msg "s3_s3cmd: no server started"
		return 1
	fi
	s3cmd -c "$S3SERVER_DIR/s3cfg" "$@"
}
