#!/bin/bash
# t0250-versions-import: a bucket kept by hand-written "upload the whole
# tree under a timestamp" scripts (202501151030/, 202501161030/) is
# imported as snapshots:
#  - `dmfs snapshot --import-prefix 202501151030/ --id 202501151030`
#    reads the same as the prefix through snapshots/202501151030/, dated
#    by its name (st_mtime 2025-01-15 10:30 UTC), and stores each distinct
#    content once;
#  - importing 202501161030/ (a few files differ) stores only the
#    differing contents; dmfs diff lists just those; snapshots/latest is
#    the later one; the prefixes themselves are untouched.
. "$(dirname "$0")/lib/common.sh"
. "$T_SRC/tests/lib/versions.sh"

P1=202501151030 P2=202501161030
T1=$(date -u -d '2025-01-15 10:30:00' +%s)
T2=$(date -u -d '2025-01-16 10:30:00' +%s)
UP=$T_ROOT/up # what goes into the bucket: both prefixes
python3 "$T_SRC/tests/lib/mktree.py" "$UP/$P1" 150 1 || t_fail "mktree"
find "$UP/$P1" -type d -empty -delete # a bucket has no empty directories
cp -a "$UP/$P1" "$UP/$P2"
mapfile -t F < <(cd "$UP/$P2" && find dir0[2-8] -name 'f*.dat' | LC_ALL=C sort | awk 'NR % 19 == 3' | head -4)
[ "${#F[@]}" = 4 ] || t_fail "test setup: want 4 files"
for i in 0 1 2 3; do t_make_file "$UP/$P2/${F[$i]}" $((2000 + 333 * i)) "day2-$i"; done

for kind in $(t_backends); do
	case $kind in rgw | file) ;; *) continue ;; esac
	t_backend_start "$kind"
	t_put_tree "$UP"
	M=$T_ROOT/mnt

	t_dmfs snapshot --import-prefix "$P1/" --id "$P1" >"$T_ROOT/out" 2>"$T_ROOT/err" ||
		t_fail "import $P1: $(cat "$T_ROOT/err")"
	want=$(v_tree_objects "$UP/$P1")
	got=$(v_count .dmfs/objects/)
	[ "$got" = "$want" ] || t_fail "import of $P1 stored '$got' (count bytes), want '$want'"
	read -r n1 b1 <<<"$got"

	t_dmfs snapshot --import-prefix "$P2/" --id "$P2" >"$T_ROOT/out" 2>"$T_ROOT/err" ||
		t_fail "import $P2: $(cat "$T_ROOT/err")"
	read -r n2 b2 <<<"$(v_count .dmfs/objects/)"
	wantb=0
	for f in "${F[@]}"; do wantb=$((wantb + $(stat -c %s "$UP/$P2/$f"))); done
	[ $((n2 - n1)) = 4 ] && [ $((b2 - b1)) = "$wantb" ] ||
		t_fail "import of $P2 stored $((n2 - n1)) objects / $((b2 - b1)) bytes, want 4 / $wantb"
	t_log "second import stored only the 4 differing files ($wantb bytes)"

	t_dmfs diff "snapshots/$P1" "snapshots/$P2" >"$T_ROOT/diff.txt" 2>"$T_ROOT/err" ||
		t_fail "dmfs diff: $(cat "$T_ROOT/err")"
	printf 'M  %s\n' "${F[@]}" >"$T_ROOT/want.diff"
	head -n -1 "$T_ROOT/diff.txt" | sed 's/  (.*$//' >"$T_ROOT/got.diff"
	diff "$T_ROOT/want.diff" "$T_ROOT/got.diff" >"$T_ROOT/diff.out" ||
		t_fail "dmfs diff of the imports (- want, + got): $(cat "$T_ROOT/diff.out")"

	t_mount "$M"
	for p in "$P1" "$P2"; do
		diff -r "$UP/$p" "$M/snapshots/$p" >"$T_ROOT/diff.out" 2>&1 ||
			t_fail "snapshots/$p differs from the prefix: $(head -5 "$T_ROOT/diff.out")"
		diff -r "$UP/$p" "$M/live/$p" >"$T_ROOT/diff.out" 2>&1 ||
			t_fail "the prefix live/$p changed: $(head -5 "$T_ROOT/diff.out")"
	done
	got=$(stat -c %Y "$M/snapshots/$P1")
	[ "$got" = "$T1" ] || t_fail "st_mtime of snapshots/$P1 is $got ($(date -u -d "@$got")), want $T1 (2025-01-15 10:30 UTC)"
	got=$(stat -c %Y "$M/snapshots/$P2")
	[ "$got" = "$T2" ] || t_fail "st_mtime of snapshots/$P2 is $got ($(date -u -d "@$got")), want $T2"
	[ "$(readlink "$M/snapshots/latest")" = "$P2" ] ||
		t_fail "snapshots/latest -> $(readlink "$M/snapshots/latest"), want $P2"
	t_umount "$M"
	v_get ".dmfs/refs/snapshots/$P1" "$T_ROOT/ref.json" || t_fail "no ref for $P1"
	python3 - "$T_ROOT/ref.json" "$T1" <<'PY' || t_fail "ref $P1: $(cat "$T_ROOT/ref.json")"
import json, sys
h = json.load(open(sys.argv[1]))["header"]
assert h["kind"] == "snapshot" and h["name"] == "202501151030", h
assert h["created"] == int(sys.argv[2]), h
assert h.get("created_iso", "2025-01-15T10:30:00Z") == "2025-01-15T10:30:00Z", h
PY
	t_backend_stop
done
t_done
