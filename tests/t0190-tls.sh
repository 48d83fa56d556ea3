#!/bin/bash
# t0190-tls: TLS is verified by default.  Behind a TLS front (socat with a
# self-signed certificate made for the test), a mount without the
# certificate is refused with a clear message; with -o ca_bundle= or
# AWS_CA_BUNDLE it works; -o no_verify_ssl is the explicit way around.
# Over TLS the parts of an upload are sent as UNSIGNED-PAYLOAD (no
# sha256 pass for the signature) and arrive whole.
. "$(dirname "$0")/lib/common.sh"

command -v socat >/dev/null || t_skip "socat is not installed"
command -v openssl >/dev/null || t_skip "openssl is not installed"
echo "over tls" >"$T_ROOT/t.txt"

for kind in $(t_backends); do
	[ "$kind" = file ] && continue
	t_backend_start "$kind"
	t_put_file "$T_ROOT/t.txt" t.txt
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
		-addext "subjectAltName=IP:127.0.0.1" \
		-keyout "$T_ROOT/key.pem" -out "$T_ROOT/cert.pem" 2>/dev/null || t_fail "openssl req"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	socat "OPENSSL-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,verify=0,cert=$T_ROOT/cert.pem,key=$T_ROOT/key.pem" \
		"TCP:127.0.0.1:$S3_PORT" 2>"$T_ROOT/socat.log" &
	socat_pid=$!
	for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
	M=$T_ROOT/mnt
	mkdir -p "$M"
	https=https://127.0.0.1:$port

	out=$(env -u AWS_CA_BUNDLE "$DMFS" mount "$T_STORE" "$M" \
		-o "endpoint=$https,cache_dir=$T_ROOT/cache" 2>&1) && t_fail "self-signed certificate accepted by default"
	echo "$out" | grep -qi "certificate" || t_fail "no clear TLS message: $out"
	t_log "refused: $out"
	mountpoint -q "$M" && t_fail "mounted anyway"

	T_MOUNT_OPTS="endpoint=$https"
	t_mount "$M" "ca_bundle=$T_ROOT/cert.pem"
	[ "$(cat "$M/live/t.txt")" = "over tls" ] || t_fail "read with ca_bundle"
	t_umount "$M"

	AWS_CA_BUNDLE=$T_ROOT/cert.pem t_mount "$M"
	[ "$(cat "$M/live/t.txt")" = "over tls" ] || t_fail "read with AWS_CA_BUNDLE"
	t_umount "$M"

	t_mount "$M" no_verify_ssl
	[ "$(cat "$M/live/t.txt")" = "over tls" ] || t_fail "read with no_verify_ssl"
	t_umount "$M"

	# Writes over TLS: the parts of a multipart upload go without a
	# payload hash (TLS guards the bytes); the bucket gets them whole.
	t_make_file "$T_ROOT/parts.bin" $((12 * 1048576 + 7)) parts
	t_mount "$M" "ca_bundle=$T_ROOT/cert.pem" multipart_size=5M debug=1
	cp "$T_ROOT/parts.bin" "$M/live/parts.bin" || t_fail "write over tls"
	t_umount "$M"
	t_store_cat parts.bin | cmp - "$T_ROOT/parts.bin" || t_fail "parts.bin in the bucket differs"
	grep -q "MPU-PART data/parts.bin .*body not hashed (TLS)" "$T_LOG" ||
		t_fail "parts sent over TLS were hashed: $(grep MPU-PART "$T_LOG" | head -2)"

	kill "$socat_pid" 2>/dev/null
	wait "$socat_pid" 2>/dev/null || true
	T_MOUNT_OPTS=
	t_backend_stop
done
t_done
