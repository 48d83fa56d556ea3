# shellcheck shell=bash
# tests/lib/versions.sh - helpers for the snapshot / dataset version tests
# (t02NN-versions-*.sh).  Source after common.sh.
#
# They look at the bucket with an independent client (awscli for S3
# servers, plain files for a file:// store), never through dmfs, so a test
# can check what dmfs really wrote.  KEY is always relative to the store
# root (".dmfs/objects/...", "dir/file").

# v_keys PREFIX/: "SIZE KEY" for every object under PREFIX/, sorted by key.
v_keys() {
	local p=$1
	case $T_KIND in
	file)
		[ -d "$T_STORE_DIR/$p" ] || return 0
		(cd "$T_STORE_DIR" && find "${p%/}" -type f -printf '%s %p\n') |
			LC_ALL=C sort -k2
		;;
	*)
		# `aws s3 ls` exits 1 when nothing matches.
		{ s3_aws s3 ls --recursive "s3://$T_BUCKET/data/$p" || true; } |
			awk '{ k = $0; sub(/^[^ ]+ +[^ ]+ +[0-9]+ /, "", k)
			       sub(/^data\//, "", k); print $3, k }' |
			LC_ALL=C sort -k2
		;;
	esac
}

# v_count PREFIX/: "COUNT BYTES" of the objects under PREFIX/ (the
# server's own listing; for S3 `aws s3 ls --summarize`).
v_count() {
	local p=$1 out n b
	case $T_KIND in
	file)
		v_keys "$p" | awk '{ n++; b += $1 } END { print n + 0, b + 0 }'
		;;
	*)
		out=$({ s3_aws s3 ls --recursive --summarize \
			"s3://$T_BUCKET/data/$p" || true; })
		n=$(echo "$out" | sed -n 's/^ *Total Objects: *\([0-9]*\).*/\1/p')
		b=$(echo "$out" | sed -n 's/^ *Total Size: *\([0-9]*\).*/\1/p')
		echo "${n:-0} ${b:-0}"
		;;
	esac
}

# v_get KEY FILE: download one object.
v_get() {
	case $T_KIND in
	file) cp "$T_STORE_DIR/$1" "$2" ;;
	*) s3_aws s3 cp --quiet --only-show-errors "s3://$T_BUCKET/data/$1" "$2" ;;
	esac
}

# v_rm KEY: delete one object behind dmfs's back.
v_rm() {
	case $T_KIND in
	file) rm -f "$T_STORE_DIR/$1" ;;
	*) s3_aws s3 rm --quiet --only-show-errors "s3://$T_BUCKET/data/$1" >/dev/null ;;
	esac || t_fail "cannot delete $1"
}

# v_exists KEY: the object is there.
v_exists() {
	case $T_KIND in
	file) [ -f "$T_STORE_DIR/$1" ] ;;
	*) s3_aws s3api head-object --bucket "$T_BUCKET" --key "data/$1" >/dev/null 2>&1 ;;
	esac
}

# v_ref_manifest REF: the manifest hash a ref ("datasets/ds/v1") names.
v_ref_manifest() {
	local f=$T_ROOT/ref.$$.json
	v_get ".dmfs/refs/$1" "$f" || t_fail "cannot read the ref $1 from the bucket"
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifest"])' "$f" ||
		t_fail "ref $1 is not JSON with a manifest: $(head -c 300 "$f")"
	rm -f "$f"
}

# v_manifest_shas HASH: the content hashes a manifest names, sorted, unique.
v_manifest_shas() {
	local f=$T_ROOT/manifest.$$.jsonl
	v_get ".dmfs/manifests/sha256/$1" "$f" || t_fail "cannot read manifest $1"
	python3 - "$f" <<'PY' || t_fail "manifest $1 does not parse"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
json.loads(lines[0])
print("\n".join(sorted({json.loads(l)["sha256"] for l in lines[1:] if l and "sha256" in json.loads(l)})))
PY
	rm -f "$f"
}

# v_tree_objects DIR: "COUNT BYTES" of the distinct contents of the files
# under DIR - what a content-addressed store of DIR holds.
v_tree_objects() {
	python3 - "$1" <<'PY'
import hashlib, os, sys
seen = {}
for d, _, files in os.walk(sys.argv[1]):
    for n in files:
        p = os.path.join(d, n)
        with open(p, "rb") as f:
            seen[hashlib.sha256(f.read()).hexdigest()] = os.path.getsize(p)
print(len(seen), sum(seen.values()))
PY
}

# v_sha256 FILE: the hex sha256 of a local file.
v_sha256() { sha256sum "$1" | cut -d' ' -f1; }

# v_object_key HEX: the content object's key.
v_object_key() { echo ".dmfs/objects/sha256/${1:0:2}/${1:2}"; }

# v_expect_erofs WHAT CMD...: CMD fails, saying "Read-only file system".
v_expect_erofs() {
	local what=$1 err=$T_ROOT/erofs.err
	shift
	if "$@" 2>"$err"; then
		t_fail "$what succeeded inside a read-only version"
	fi
	grep -q "Read-only file system" "$err" ||
		t_fail "$what: expected 'Read-only file system', got: $(cat "$err")"
}

# v_wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds;
# prints the seconds it took.  Returns 1 on timeout.
v_wait_for() {
	local limit_ms=$(($1 * 1000)) start now
	shift
	start=$(($(date +%s%N) / 1000000))
	while :; do
		if "$@" 2>/dev/null; then
			now=$(($(date +%s%N) / 1000000))
			printf '%d.%03d\n' $(((now - start) / 1000)) $(((now - start) % 1000))
			return 0
		fi
		now=$(($(date +%s%N) / 1000000))
		[ $((now - start)) -le "$limit_ms" ] || return 1
		sleep 0.2
	done
}

# v_s3rver_tree SRC DST: DST is SRC without the files s3rver 3.7.1 cannot
# copy server-side.  Its CopyObject decodes x-amz-copy-source with
# decodeURI, which leaves %2B, %3B, %3D, %26 ... encoded, so a key holding
# one of ; , ? : @ & = + $ # answers NoSuchKey (awscli's copy-object fails
# the same way).  A server defect: the tests work around it, dmfs must not.
v_s3rver_tree() {
	rm -rf "$2"
	cp -a "$1" "$2"
	find "$2" -type f -name '*[;,?:@&=+$#]*' -delete
}
