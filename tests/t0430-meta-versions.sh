#!/bin/bash
# t0430-meta-versions: versions freeze metadata.
#  - `dmfs commit … --from-query EXPR` (and --from-query NAME, a saved
#    query) holds exactly the matching files, and their metadata;
#  - user.* xattrs inside the version return the frozen values, unchanged
#    after the live labels change; the version's files read the bytes;
#  - `dmfs query --at datasets/NAME/VERSION` runs over the frozen values;
#  - a snapshot freezes the labels too; dmfs.sha256 and dmfs.version;
#  - a query with a type error fails the commit before anything is made.
. "$(dirname "$0")/lib/common.sh"

SRC=$T_ROOT/src
mkdir -p "$SRC/a" "$SRC/b"
for i in $(seq 1 30); do t_make_file "$SRC/$([ $((i % 2)) = 0 ] && echo a || echo b)/f$i.dat" $((200 + i)) "f$i"; done

xget() { getfattr --only-values -n "user.$2" "$1" 2>/dev/null; }

for kind in $(t_backends); do
	t_backend_start "$kind"
	t_put_tree "$SRC"
	t_mount "$T_ROOT/mnt" stat_ttl=1,refresh=1
	M=$T_ROOT/mnt
	(cd "$SRC" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) | python3 -c '
import json, sys
for p in sys.stdin:
    p = p.strip(); i = int(p.split("/f")[1].split(".")[0])
    print(json.dumps({"path": p, "difficulty": ["easy", "hard"][i % 3 == 0], "episode": i}))
' >"$T_ROOT/labels.jsonl"
	cp "$T_ROOT/labels.jsonl" "$M/live/.dmfs.meta" || t_fail "labelling: $(cat "$M/.dmfs/last-error")"
	echo refresh >"$M/.dmfs/ctl" || t_fail "refresh"
	t_dmfs query 'difficulty == "hard"' >"$T_ROOT/want" || t_fail "dmfs query"
	[ "$(wc -l <"$T_ROOT/want")" = 10 ] || t_fail "expected 10 hard files, got $(wc -l <"$T_ROOT/want")"

	t_dmfs commit hard v1 --from-query 'difficulty == "hard"' -m "hard ones" >/dev/null || t_fail "commit --from-query"
	t_dmfs query 'episode > 20' --save late >/dev/null || t_fail "save query"
	t_dmfs commit late v1 --from-query late >/dev/null || t_fail "commit --from-query NAME"
	T_ALLOW_ERRORS=1
	t_dmfs commit bad v1 --from-query 'difficulty > 3' 2>"$T_ROOT/err"
	[ $? = 2 ] || t_fail "commit with a type error: exit status not 2"
	grep -q difficulty "$T_ROOT/err" || t_fail "commit with a type error: $(cat "$T_ROOT/err")"
	T_ALLOW_ERRORS=0
	echo refresh >"$M/.dmfs/ctl" || t_fail "refresh"
	[ -e "$M/datasets/bad" ] && t_fail "a refused commit made a dataset"

	V=$M/datasets/hard/v1
	(cd "$V" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$T_ROOT/got"
	cmp -s "$T_ROOT/want" "$T_ROOT/got" || t_fail "the version holds other files: $(diff "$T_ROOT/want" "$T_ROOT/got" | head -3)"
	[ "$(cd "$M/datasets/late/v1" && find . -type f | wc -l)" = 10 ] || t_fail "datasets/late/v1 does not hold 10 files"
	# through the mount's control file, too
	echo 'commit late v2 --from-query late' >"$M/.dmfs/ctl" || t_fail "ctl commit --from-query: $(cat "$M/.dmfs/last-error")"
	[ "$(cd "$M/datasets/late/v2" && find . -type f | wc -l)" = 10 ] || t_fail "datasets/late/v2 does not hold 10 files"
	f=$(head -1 "$T_ROOT/want")
	cmp -s "$SRC/$f" "$V/$f" || t_fail "$V/$f: bytes differ"
	[ "$(xget "$V/$f" difficulty)" = hard ] || t_fail "frozen difficulty: '$(xget "$V/$f" difficulty)'"
	ep=$(xget "$V/$f" episode)
	getfattr -n dmfs.version --only-values "$V/$f" | grep -q "datasets/hard/v1" || t_fail "dmfs.version"
	[ "$(getfattr -n dmfs.sha256 --only-values "$V/$f")" = "$(sha256sum <"$SRC/$f" | cut -c1-64)" ] || t_fail "dmfs.sha256"

	# the live labels change; the version does not
	setfattr -n user.difficulty -v easy "$M/live/$f" || t_fail "relabel live"
	setfattr -n user.episode -v 999 "$M/live/$f" || t_fail "relabel live"
	sleep 1.2
	[ "$(xget "$M/live/$f" difficulty)" = easy ] || t_fail "live label did not change"
	[ "$(xget "$V/$f" difficulty)" = hard ] || t_fail "the version's label followed the live one"
	[ "$(xget "$V/$f" episode)" = "$ep" ] || t_fail "the version's episode changed"
	t_dmfs query 'difficulty == "hard"' --at datasets/hard/v1 >"$T_ROOT/at" || t_fail "query --at"
	cmp -s "$T_ROOT/want" "$T_ROOT/at" || t_fail "query --at the version: $(diff "$T_ROOT/want" "$T_ROOT/at" | head -3)"
	t_dmfs query 'difficulty == "hard"' | grep -qxF "$f" && t_fail "the live query still has $f"

	# a snapshot freezes labels too
	t_dmfs snapshot --id s1 >/dev/null || t_fail "snapshot"
	echo refresh >"$M/.dmfs/ctl" || t_fail "refresh"
	[ "$(xget "$M/snapshots/s1/$f" difficulty)" = easy ] || t_fail "snapshot label: '$(xget "$M/snapshots/s1/$f" difficulty)'"
	t_dmfs meta export --at snapshots/s1 | grep -c '"difficulty"' | grep -qx 30 ||
		t_fail "meta export --at snapshots/s1: not 30 labelled rows"

	t_umount "$M"
	t_backend_stop
done
t_done
