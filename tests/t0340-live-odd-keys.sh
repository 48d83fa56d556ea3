#!/bin/bash
# t0340-live-odd-keys: keys that are not paths, and names that are not
# UTF-8 (issue 5; rules in dmfs(1), "Names").
#  - objects put straight into the bucket as a/../b, ../up, ./x, x/./y,
#    a//b, //lead, /lead, ., .., a 300-byte component, and dir beside
#    dir/f; trail/ with content; names with a newline and a backslash, a
#    1019-byte key (file://: the names a local directory can hold, and
#    names that are not UTF-8);
#  - ls -la of every directory shows only valid names, exactly the
#    expected tree; find terminates and stays on the mount;
#  - valid neighbours read back; no odd object is reachable through any
#    path (live/a/../b is the kernel's live/b, never the object "a/../b");
#  - each hidden key is counted (.dmfs/status hidden_keys) and named once
#    in the log, at warning level;
#  - creating, mkdir, rename to or symlink of a name that is not UTF-8
#    fails with EILSEQ, a key over 1024 bytes with ENAMETOOLONG, the
#    reason in .dmfs/last-error, and nothing reaches the bucket;
#  - a snapshot of live/ holds the same tree and nothing odd.
. "$(dirname "$0")/lib/common.sh"

# Put one object with an exact key (the low-level call: no path
# normalisation by the client), content $2.
put_key() {
	printf '%s' "$2" >"$T_ROOT/body"
	s3_aws s3api put-object --bucket "$T_BUCKET" --key "data/$1" \
		--body "$T_ROOT/body" >/dev/null || t_fail "put-object '$1'"
}

# The same for an odd key, which a server may refuse (s3rver routes
# "a//b" to nothing): then it is left out, and counted in REFUSED.
put_odd() {
	printf '%s' "$2" >"$T_ROOT/body"
	if ! s3_aws s3api put-object --bucket "$T_BUCKET" --key "data/$1" \
		--body "$T_ROOT/body" >/dev/null 2>"$T_ROOT/put.err"; then
		t_log "$T_KIND refuses key '$1': $(tr '\n' ' ' <"$T_ROOT/put.err")"
		REFUSED+=("$1")
		return 0
	fi
	ODD+=("$1")
}

# Every key of the bucket under data/, one per line (JSON strings, so a
# newline in a key stays on its line).
bucket_keys() {
	s3_aws s3api list-objects-v2 --bucket "$T_BUCKET" --prefix data/ \
		--output json | python3 -c 'import json,sys
for o in json.load(sys.stdin).get("Contents", []): print(json.dumps(o["Key"]))'
}

# A checksum of every name in the store (keys, or paths for file://), to
# see that a step changed nothing there.
store_keys_sum() {
	case $T_KIND in
	file) (cd "$T_STORE_DIR" && find . | LC_ALL=C sort | md5sum) ;;
	*) bucket_keys | md5sum ;;
	esac
}

# The long valid key: four 200-byte components and one of 214 (1019 bytes,
# 1024 with the store's "data/").
LONGKEY=$(python3 -c 'print("/".join(["k" * 200] * 4 + ["k" * 214]))')
LONGN=$(python3 -c 'print("n" * 300)')

# The hidden unit of an odd key (see keyname_check_path): the key up to
# its first bad component, with the '/' after it.
unit_of() {
	case $1 in
	a/../b) echo a/../ ;; ../up) echo ../ ;; ./x) echo ./ ;;
	x/./y) echo x/./ ;; a//b) echo a// ;; //lead | /lead) echo / ;;
	long/*) echo long/n ;; *) echo "$1" ;;
	esac
}

# want_tree [PATH...]: the tree live/ must show (as tree_of prints it)
# into $T_ROOT/want: the valid keys every store holds, plus PATHs.
want_tree() {
	{
		cat <<'EOF'
a
a/keep
b
dir
dir/f
long
long/short
ok
ok/back\\slash
ok/new\nline
ok/plain.txt
trail
x
x/ok
EOF
		[ $# = 0 ] || printf '%s\n' "$@"
	} | LC_ALL=C sort >"$T_ROOT/want"
}

# The odd objects of an S3 store (first, so that a server that would
# normalise a key cannot overwrite a valid one), then the valid ones;
# HIDDEN: how many hidden units the odd keys the server kept make.
put_s3_tree() {
	ODD=()
	REFUSED=()
	# s3rver resolves "." and ".." segments of the URL path itself
	# ("a/../b" becomes "b"), answers 404 to "a//b", and keeps objects as
	# files named by their keys (a component over NAME_MAX makes it
	# exit): there, only the keys it keeps as given.
	if [ "$T_KIND" != s3rver ]; then
		put_odd a/../b "ESCAPE-a-dotdot-b"
		put_odd ../up "ESCAPE-up"
		put_odd ./x "ESCAPE-dot-x"
		put_odd x/./y "ESCAPE-x-dot-y"
		put_odd a//b "ESCAPE-a-slash-slash-b"
		put_odd //lead "ESCAPE-slash-slash-lead"
		put_odd /lead "ESCAPE-slash-lead"
		put_odd "long/$LONGN" "ESCAPE-long-name"
	fi
	put_odd . "ESCAPE-dot"
	put_odd .. "ESCAPE-dotdot"
	put_odd dir "ESCAPE-dir-file"
	put_key trail/ "ESCAPE-marker-content"
	put_key b "real-b"
	put_key ok/plain.txt "plain"
	put_key "ok/new
line" "newline"
	put_key 'ok/back\slash' "backslash"
	put_key a/keep "a-keep"
	put_key x/ok "x-ok"
	put_key dir/f "dir-f"
	put_key long/short "long-short"
	put_key "$LONGKEY" "long-key"
	# The server must hold the keys as given, or the test proves nothing.
	bucket_keys >"$T_ROOT/keys"
	for k in "${ODD[@]}" trail/; do
		grep -qxF "\"data/$k\"" "$T_ROOT/keys" ||
			t_fail "$T_KIND did not keep key '$k' as given: $(cat "$T_ROOT/keys")"
	done
	[ "${#ODD[@]}" -ge 3 ] || t_fail "$T_KIND took only ${#ODD[@]} odd keys"
	HIDDEN=$(for k in "${ODD[@]}"; do unit_of "$k"; done | sort -u | wc -l)
	want_tree
}

# file://: what a local directory can hold (no '.', '..', empty or
# 300-byte names), plus names that are not UTF-8.
put_file_tree() {
	python3 - "$T_STORE_DIR" "$LONGKEY" <<'PY' || t_fail "make file:// tree"
import os, sys
root = sys.argv[1].encode()
def put(rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
put(b"b", b"real-b")
put(b"ok/plain.txt", b"plain")
put(b"ok/new\nline", b"newline")
put(b"ok/back\\slash", b"backslash")
put(b"a/keep", b"a-keep")
put(b"x/ok", b"x-ok")
put(b"dir/f", b"dir-f")
put(b"long/short", b"long-short")
put(sys.argv[2].encode(), b"long-key")
os.makedirs(os.path.join(root, b"trail"))
put(b"ok/bad\xff.txt", b"ESCAPE-not-utf8")
put(b"bad\xfedir/inner", b"ESCAPE-not-utf8-dir")
put(b"ok/caf\xe9", b"ESCAPE-latin1")
put(b"onlybad/\xff", b"ESCAPE-only-hidden")
PY
	HIDDEN=4
	want_tree onlybad
}

# Every path under DIR (relative, one a line, newlines as \n, the long
# key's chain left out), checking each name on the way.
tree_of() {
	python3 - "$1" <<'PY'
import os, sys
top = sys.argv[1].encode()
out = []
for d, dirs, files in os.walk(top):
    for n in dirs + files:
        assert n not in (b".", b"..") and b"/" not in n, n
        assert 0 < len(n) <= 255, n
        n.decode("utf-8")  # raises on a name that is not UTF-8
        rel = os.path.relpath(os.path.join(d, n), top).decode()
        if not rel.startswith("k" * 200):
            out.append(rel.replace("\\", "\\\\").replace("\n", "\\n"))
print("\n".join(sorted(out)))
PY
}

# errno of a failing call, as a name ("ok" when it worked).
NAMES_PY='
import errno, os, sys
L = sys.argv[1].encode()
def err(fn):
    try:
        fn()
    except OSError as e:
        return errno.errorcode[e.errno]
    return "ok"
def create(p):
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
bad = {
    "create": lambda: create(L + b"/new\xff.txt"),
    "create-latin1": lambda: create(L + b"/ok/caf\xe9.txt"),
    "create-nested": lambda: create(L + b"/ok/x\xc0\xaf"),
    "mkdir": lambda: os.mkdir(L + b"/dir\xfe"),
    "rename": lambda: os.rename(L + b"/ok/plain.txt", L + b"/ok/plain\xff.txt"),
    "symlink": lambda: os.symlink(b"target", L + b"/link\xff"),
}
for what, fn in bad.items():
    got = err(fn)
    if got != "EILSEQ":
        sys.exit(f"{what} of a name that is not UTF-8: {got}, want EILSEQ")
last = open(os.path.dirname(L) + b"/.dmfs/last-error", "rb").read()
if b"link\\xff: name is not valid UTF-8" not in last:
    sys.exit(f".dmfs/last-error: {last!r}")
# A key over 1024 bytes: ENAMETOOLONG, whatever the store.
p = L
for i in range(4):
    p += b"/" + b"m" * 250
    os.mkdir(p)
got = err(lambda: os.mkdir(p + b"/" + b"m" * 250))
if got != "ENAMETOOLONG":
    sys.exit(f"mkdir of a 1254-byte key: {got}, want ENAMETOOLONG")
for i in range(4):
    os.rmdir(p)
    p = os.path.dirname(p)
# One name over 255 bytes (listings would hide it): ENAMETOOLONG too,
# for a file and a directory; nothing is created.
for what, fn in {
    "create": lambda: create(L + b"/" + b"n" * 256),
    "mkdir": lambda: os.mkdir(L + b"/" + b"n" * 300),
}.items():
    got = err(fn)
    if got != "ENAMETOOLONG":
        sys.exit(f"{what} of a 256+ byte name: {got}, want ENAMETOOLONG")
assert not [n for n in os.listdir(L) if n.startswith(b"nnnn")], "a long name was created"
# Valid UTF-8 is fine, and the renamed file is where it was.
with open(L + "/ok/café €.txt".encode(), "wb") as f:
    f.write(b"utf8")
os.unlink(L + "/ok/café €.txt".encode())
assert open(L + b"/ok/plain.txt", "rb").read() == b"plain", "plain.txt"
'

for kind in $(t_backends); do
	t_backend_start "$kind"
	# The log lines are counted per backend.
	t_log_reset
	M=$T_ROOT/mnt
	L=$M/live
	case $kind in
	file) put_file_tree ;;
	*) put_s3_tree ;;
	esac
	t_mount "$M" stat_ttl=30

	# --- every listing holds only valid names: exactly the tree ---
	timeout 120 find "$L" >"$T_ROOT/find.out" 2>"$T_ROOT/find.err" ||
		t_fail "find over live/ failed or did not end: $(head -5 "$T_ROOT/find.err")"
	n_all=$(timeout 60 find "$L" -printf '.' | wc -c)
	n_xdev=$(timeout 60 find "$L" -xdev -printf '.' | wc -c)
	[ "$n_all" = "$n_xdev" ] || t_fail "find left the mount: $n_all paths, $n_xdev on it"
	timeout 60 find "$L" -type d -print0 |
		while IFS= read -r -d '' d; do
			ls -la "$d" >/dev/null 2>"$T_ROOT/ls.err" || { echo "$d"; cat "$T_ROOT/ls.err"; }
		done >"$T_ROOT/ls.bad"
	[ -s "$T_ROOT/ls.bad" ] && t_fail "ls -la failed: $(head -5 "$T_ROOT/ls.bad")"
	tree_of "$L" >"$T_ROOT/got" || t_fail "a listing holds a name that is not valid"
	diff "$T_ROOT/want" "$T_ROOT/got" >"$T_ROOT/tree.diff" ||
		t_fail "live/ tree differs from the expected one: $(cat "$T_ROOT/tree.diff")"
	t_log "ls -la and find: only valid names, $(wc -l <"$T_ROOT/got") paths"

	# --- valid neighbours read back ---
	[ "$(cat "$L/b")" = real-b ] || t_fail "live/b: $(cat "$L/b")"
	[ "$(cat "$L/ok/plain.txt")" = plain ] || t_fail "ok/plain.txt"
	[ "$(cat "$L/ok/new
line")" = newline ] || t_fail "name with a newline"
	[ "$(cat "$L/ok/back\\slash")" = backslash ] || t_fail "name with a backslash"
	[ "$(cat "$L/a/keep")" = a-keep ] || t_fail "a/keep"
	[ "$(cat "$L/x/ok")" = x-ok ] || t_fail "x/ok"
	[ "$(cat "$L/dir/f")" = dir-f ] || t_fail "dir/f"
	[ "$(cat "$L/long/short")" = long-short ] || t_fail "long/short"
	[ "$(cat "$L/$LONGKEY")" = long-key ] || t_fail "the 1019-byte key"

	# --- no odd object is reachable through any path ---
	[ "$(cat "$L/a/../b")" = real-b ] || t_fail "live/a/../b is not live/b: $(cat "$L/a/../b")"
	for p in x/./y a//b x/y a/b lead up; do
		[ -e "$L/$p" ] && t_fail "live/$p exists"
	done
	[ -d "$L/dir" ] || t_fail "dir (a file and a directory) is not the directory"
	cat "$L/dir" >/dev/null 2>&1 && t_fail "dir reads as a file"
	[ -d "$L/trail" ] || t_fail "trail/ (a marker with content) is not a directory"
	[ -z "$(ls -A "$L/trail")" ] || t_fail "trail/ is not empty: $(ls -A "$L/trail")"
	grep -r ESCAPE "$L" >"$T_ROOT/escape" 2>&1 &&
		t_fail "odd object content reachable: $(head -3 "$T_ROOT/escape")"
	if [ "$kind" = file ]; then
		# Holds only a hidden name: looks empty, is not.
		[ -z "$(ls -A "$L/onlybad")" ] || t_fail "onlybad/ shows $(ls -A "$L/onlybad")"
		rmdir "$L/onlybad" 2>"$T_ROOT/rmdir.err" && t_fail "rmdir of onlybad/ worked"
		grep -q 'not empty' "$T_ROOT/rmdir.err" || t_fail "rmdir onlybad/: $(cat "$T_ROOT/rmdir.err")"
	fi
	t_log "odd keys unreachable; live/a/../b is live/b"

	# --- hidden keys counted, each named once in the log ---
	got=$(t_status "$M" hidden_keys)
	[ "$got" = "$HIDDEN" ] || t_fail "hidden_keys $got, want $HIDDEN: $(grep 'hides' "$T_LOG")"
	lines=$(grep -c 'warning: live/ hides' "$T_LOG")
	[ "$lines" = "$HIDDEN" ] || t_fail "$lines log lines about hidden keys, want $HIDDEN"
	case $kind in
	file)
		grep -qF "hides key 'ok/bad\\xff.txt'" "$T_LOG" || t_fail "log does not name ok/bad\\xff.txt"
		grep -qF "starting with 'bad\\xfedir/'" "$T_LOG" || t_fail "log does not name bad\\xfedir/"
		;;
	*)
		case " ${ODD[*]} " in
		*" a/../b "*) grep -qF "starting with 'a/../'" "$T_LOG" ||
			t_fail "log does not name a/../" ;;
		esac
		grep -qF "hides key 'dir': a directory" "$T_LOG" || t_fail "log does not name dir"
		;;
	esac
	t_log "hidden_keys = $got, one warning each"

	# --- names that are not UTF-8 are refused, nothing reaches the bucket ---
	before=$(store_keys_sum)
	python3 -c "$NAMES_PY" "$L" || t_fail "names that are not UTF-8"
	after=$(store_keys_sum)
	[ "$before" = "$after" ] || t_fail "refused names changed the bucket"
	t_log "names that are not UTF-8: EILSEQ, bucket unchanged"

	# --- a snapshot of live/ holds the same tree, nothing odd ---
	t_dmfs snapshot --id odd >"$T_ROOT/snap.out" 2>"$T_ROOT/snap.err" ||
		t_fail "snapshot: $(cat "$T_ROOT/snap.err")"
	echo refresh >"$M/.dmfs/ctl" || t_fail "refresh"
	timeout 60 find "$M/snapshots/odd" >/dev/null || t_fail "find over the snapshot"
	tree_of "$M/snapshots/odd" >"$T_ROOT/snap.got" || t_fail "a snapshot listing holds a name that is not valid"
	# A snapshot keeps files; the empty-looking trail/ and onlybad/ are none.
	grep -vx -e trail -e onlybad "$T_ROOT/want" | diff - "$T_ROOT/snap.got" >"$T_ROOT/snap.diff" ||
		t_fail "snapshot tree differs: $(cat "$T_ROOT/snap.diff")"
	grep -r ESCAPE "$M/snapshots/odd" >"$T_ROOT/escape" 2>&1 &&
		t_fail "odd object content in the snapshot: $(head -3 "$T_ROOT/escape")"
	[ "$(cat "$M/snapshots/odd/b")" = real-b ] || t_fail "snapshot b"
	t_log "snapshot: same tree, nothing odd"

	t_umount "$M"
	t_backend_stop
done
t_done
