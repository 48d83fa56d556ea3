#!/bin/bash
# t0400-meta-xattr: per-file metadata through the mount and the CLI.
#  - setfattr/getfattr round trip for int, float, bool, string (unicode)
#    and blob (bytes that are not UTF-8), getfattr -d lists them,
#    setfattr -x removes one;
#  - a value of the wrong type fails with EINVAL and .dmfs/last-error
#    says why; the old value stays;
#  - DIR/.dmfs.meta: JSON Lines and CSV batches (paths relative to DIR,
#    null / an empty cell removes a field); a batch with a bad row in the
#    middle (wrong type, missing file, malformed line) applies nothing;
#    reading it gives the rows of the files under DIR;
#  - dmfs meta set/get/rm/export/import/log agree with the mount, export
#    as CSV, and the log shows old -> new;
#  - the schema (.dmfs/schema, dmfs schema) fixes types and allowed values;
#  - writes to versions, snapshots and query results fail with EROFS.
. "$(dirname "$0")/lib/common.sh"

SRC=$T_ROOT/src
mkdir -p "$SRC/imgs/hf" "$SRC/txt"
for i in 1 2 3 4 5; do t_make_file "$SRC/imgs/hf/img$i.png" $((1000 * i)) "i$i"; done
for i in 1 2 3; do t_make_file "$SRC/txt/doc$i.txt" 300 "t$i"; done
t_make_file "$SRC/top.bin" 100 top

# xget FILE NAME: the raw value of user.NAME (empty and status 1 if none)
xget() { getfattr --only-values -n "user.$2" "$1" 2>/dev/null; }

for kind in $(t_backends); do
	t_backend_start "$kind"
	rm -rf "$T_ROOT/cli" # a cache of the same store URI on another server
	t_put_tree "$SRC"
	t_mount "$T_ROOT/mnt" stat_ttl=1,refresh=1
	M=$T_ROOT/mnt
	F=$M/live/imgs/hf/img1.png

	# --- every type round-trips ---
	setfattr -n user.count -v 42 "$F" || t_fail "setfattr int"
	setfattr -n user.score -v 0.25 "$F" || t_fail "setfattr float"
	setfattr -n user.ok -v true "$F" || t_fail "setfattr bool"
	setfattr -n user.label -v "Ünïcødé cat" "$F" || t_fail "setfattr string"
	printf '\xff\xfe\x00\x01' >"$T_ROOT/blob"
	setfattr -n user.raw -v "0x$(od -An -tx1 "$T_ROOT/blob" | tr -d ' \n')" "$F" ||
		t_fail "setfattr blob"
	[ "$(xget "$F" count)" = 42 ] || t_fail "int: got '$(xget "$F" count)'"
	[ "$(xget "$F" score)" = 0.25 ] || t_fail "float: got '$(xget "$F" score)'"
	[ "$(xget "$F" ok)" = true ] || t_fail "bool: got '$(xget "$F" ok)'"
	[ "$(xget "$F" label)" = "Ünïcødé cat" ] || t_fail "string: got '$(xget "$F" label)'"
	getfattr --only-values -n user.raw "$F" >"$T_ROOT/blob.got" || t_fail "getfattr blob"
	cmp -s "$T_ROOT/blob" "$T_ROOT/blob.got" || t_fail "blob bytes differ"
	getfattr -d "$F" >"$T_ROOT/dump" || t_fail "getfattr -d"
	for n in count score ok label raw; do
		grep -q "^user.$n=" "$T_ROOT/dump" || t_fail "getfattr -d lacks user.$n: $(cat "$T_ROOT/dump")"
	done
	# the CLI reads the same table (after the mount sent it)
	echo refresh >"$M/.dmfs/ctl" || t_fail "refresh"
	[ "$(CACHE=$T_ROOT/cli t_dmfs meta get imgs/hf/img1.png count)" = 42 ] ||
		t_fail "dmfs meta get (other cache) does not see count=42"
	# an int field takes an int literal into a float field, not the reverse
	setfattr -n user.score -v 3 "$F" || t_fail "an int into a float field"
	[ "$(xget "$F" score)" = 3 ] || t_fail "float 3: got '$(xget "$F" score)'"

	# --- wrong types: EINVAL, the reason in last-error, old value kept ---
	T_ALLOW_ERRORS=1
	out=$(setfattr -n user.count -v notanumber "$F" 2>&1) && t_fail "a string into an int field was accepted"
	echo "$out" | grep -q "Invalid argument" || t_fail "wrong type: not EINVAL: $out"
	grep -q "count" "$M/.dmfs/last-error" || t_fail "last-error does not name the field: $(cat "$M/.dmfs/last-error")"
	grep -qi "int" "$M/.dmfs/last-error" || t_fail "last-error does not name the type: $(cat "$M/.dmfs/last-error")"
	[ "$(xget "$F" count)" = 42 ] || t_fail "the old value changed after a refused write"
	setfattr -n user.ok -v 7 "$F" 2>/dev/null && t_fail "an int into a bool field was accepted"
	# no metadata on directories or missing files; dmfs.* are read-only
	setfattr -n user.x -v 1 "$M/live/imgs" 2>/dev/null && t_fail "metadata on a directory"
	setfattr -n user.x -v 1 "$M/live/nope.txt" 2>/dev/null && t_fail "metadata on a missing file"
	setfattr -n dmfs.etag -v 1 "$F" 2>/dev/null && t_fail "dmfs.etag was writable"
	# a value larger than an xattr can be
	head -c 70000 /dev/zero | tr '\0' a >"$T_ROOT/huge"
	setfattr -n user.huge -v "$(cat "$T_ROOT/huge")" "$F" 2>/dev/null && t_fail "a 70 000-byte value was accepted"
	t_log_reset
	T_ALLOW_ERRORS=0

	# --- removal ---
	setfattr -x user.ok "$F" || t_fail "setfattr -x"
	xget "$F" ok >/dev/null && t_fail "user.ok still there after setfattr -x"
	setfattr -x user.ok "$F" 2>/dev/null && t_fail "removing a missing field succeeded"

	# --- .dmfs.meta: JSON Lines ---
	cat >"$T_ROOT/b1.jsonl" <<'EOF'
{"path": "img2.png", "count": 2, "label": "dog", "split": "train"}
{"path": "img3.png", "count": 3, "label": "cat", "split": "test"}
{"path": "img1.png", "label": null}
EOF
	cp "$T_ROOT/b1.jsonl" "$M/live/imgs/hf/.dmfs.meta" || t_fail "JSONL batch refused: $(cat "$M/.dmfs/last-error")"
	[ "$(xget "$M/live/imgs/hf/img3.png" label)" = cat ] || t_fail "JSONL batch: img3 label"
	[ "$(xget "$M/live/imgs/hf/img2.png" count)" = 2 ] || t_fail "JSONL batch: img2 count"
	xget "$F" label >/dev/null && t_fail "JSONL null did not remove img1's label"

	# --- .dmfs.meta: CSV, with quoting and an empty cell ---
	printf 'path,label,note\n"txt/doc1.txt","a, quoted ""label""",first\ntxt/doc2.txt,plain,\n' \
		>"$M/live/.dmfs.meta" || t_fail "CSV batch refused: $(cat "$M/.dmfs/last-error")"
	[ "$(xget "$M/live/txt/doc1.txt" label)" = 'a, quoted "label"' ] || t_fail "CSV quoting: '$(xget "$M/live/txt/doc1.txt" label)'"
	[ "$(xget "$M/live/txt/doc1.txt" note)" = first ] || t_fail "CSV: note"
	xget "$M/live/txt/doc2.txt" note >/dev/null && t_fail "CSV: an empty cell set a value"

	# --- a bad row in the middle: nothing applied ---
	T_ALLOW_ERRORS=1
	for bad in '{"path": "img5.png", "count": "many"}' '{"path": "missing.png", "count": 1}' '{"path": "img5.png", "count": 1' \
		'{"path": "../img5.png", "count": 1}'; do
		printf '{"path": "img4.png", "count": 40}\n%s\n{"path": "img5.png", "count": 50}\n' "$bad" >"$T_ROOT/bad.jsonl"
		# cp reports an error of close(2), where a missing file is found
		cp "$T_ROOT/bad.jsonl" "$M/live/imgs/hf/.dmfs.meta" 2>/dev/null &&
			t_fail "a batch with a bad row was accepted: $bad"
		grep -q "line 2" "$M/.dmfs/last-error" || grep -q "missing.png" "$M/.dmfs/last-error" ||
			t_fail "last-error does not point at the bad row: $(cat "$M/.dmfs/last-error")"
		xget "$M/live/imgs/hf/img4.png" count >/dev/null && t_fail "row 1 of a refused batch was applied ($bad)"
	done
	printf 'path,count\nimg4.png,40\nimg5.png,abc\n' >"$M/live/imgs/hf/.dmfs.meta" 2>/dev/null &&
		t_fail "a CSV batch with a bad cell was accepted"
	xget "$M/live/imgs/hf/img4.png" count >/dev/null && t_fail "row 1 of a refused CSV batch was applied"
	t_log_reset
	T_ALLOW_ERRORS=0

	# --- reading .dmfs.meta: the rows under DIR, paths relative to it ---
	python3 - "$M/live/imgs/hf/.dmfs.meta" <<'PY' || t_fail "reading .dmfs.meta"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {r["path"]: r for r in rows}
assert sorted(by) == ["img%d.png" % i for i in range(1, 6)], sorted(by)
assert by["img3.png"]["label"] == "cat" and by["img3.png"]["count"] == 3, by["img3.png"]
assert by["img1.png"]["count"] == 42 and by["img1.png"]["score"] == 3, by["img1.png"]
assert "label" not in by["img1.png"]
PY

	# --- the CLI: set/get/rm/export/import/log ---
	echo refresh >"$M/.dmfs/ctl" || t_fail "refresh"
	t_dmfs meta set top.bin quality=0.9 tag=gold || t_fail "dmfs meta set"
	[ "$(t_dmfs meta get top.bin quality)" = 0.9 ] || t_fail "dmfs meta get quality"
	T_ALLOW_ERRORS=1
	t_dmfs meta set top.bin quality=high 2>/dev/null
	[ $? = 2 ] || t_fail "dmfs meta set of a wrong type: exit status not 2"
	t_dmfs meta set nope.bin quality=1 2>/dev/null && t_fail "dmfs meta set on a missing file"
	T_ALLOW_ERRORS=0
	t_dmfs meta rm top.bin tag || t_fail "dmfs meta rm"
	t_dmfs meta get top.bin tag >/dev/null 2>&1 && t_fail "tag still there after dmfs meta rm"
	t_dmfs meta export --format csv >"$T_ROOT/export.csv" || t_fail "dmfs meta export csv"
	head -1 "$T_ROOT/export.csv" | grep -q '^path,count,label,note,quality,raw,score,split$' ||
		t_fail "CSV header: $(head -1 "$T_ROOT/export.csv")"
	grep -q '^top.bin,,,,0.9,,,$' "$T_ROOT/export.csv" || t_fail "CSV row of top.bin: $(grep top.bin "$T_ROOT/export.csv")"
	printf '{"path":"doc3.txt","label":"imported"}\n' >"$T_ROOT/imp.jsonl"
	t_dmfs meta import "$T_ROOT/imp.jsonl" --under txt >/dev/null || t_fail "dmfs meta import"
	sleep 2 # the mount merges within refresh=1
	echo refresh >"$M/.dmfs/ctl" || t_fail "refresh"
	[ "$(xget "$M/live/txt/doc3.txt" label)" = imported ] || t_fail "the mount does not see the CLI's import"
	[ "$(xget "$M/live/top.bin" quality)" = 0.9 ] || t_fail "the mount does not see dmfs meta set"
	t_dmfs meta log imgs/hf/img1.png >"$T_ROOT/log" || t_fail "dmfs meta log"
	grep -q 'label: "Ünïcødé cat" -> null' "$T_ROOT/log" || t_fail "log lacks the label removal: $(cat "$T_ROOT/log")"
	grep -q 'score: 0.25 -> 3' "$T_ROOT/log" || t_fail "log lacks score 0.25 -> 3: $(cat "$T_ROOT/log")"
	grep -q 'count: null -> 42' "$T_ROOT/log" || t_fail "log lacks count null -> 42"

	# --- schema ---
	printf '{"split": {"type": "string", "allowed": ["train", "test", "val"]}, "weight": "float"}\n' \
		>"$M/.dmfs/schema" || t_fail "writing .dmfs/schema: $(cat "$M/.dmfs/last-error")"
	t_dmfs schema | grep -q weight || t_fail "dmfs schema does not show the new schema"
	T_ALLOW_ERRORS=1
	setfattr -n user.split -v bogus "$M/live/txt/doc1.txt" 2>/dev/null && t_fail "a value outside 'allowed' was accepted"
	setfattr -n user.weight -v heavy "$M/live/txt/doc1.txt" 2>/dev/null && t_fail "a string into a schema float"
	printf '{"count": "string"}' >"$T_ROOT/bad-schema.json"
	cp "$T_ROOT/bad-schema.json" "$M/.dmfs/schema" 2>/dev/null && t_fail "a schema that existing values do not fit was accepted"
	grep -q weight "$M/.dmfs/schema" || t_fail "a refused schema changed the schema"
	t_log_reset
	T_ALLOW_ERRORS=0
	setfattr -n user.weight -v 2 "$M/live/txt/doc1.txt" || t_fail "an int into a schema float"
	setfattr -n user.split -v val "$M/live/txt/doc1.txt" || t_fail "an allowed value"

	# --- labels follow mv and go with rm, as s3fs's object metadata does ---
	setfattr -n user.tag -v moved "$M/live/txt/doc2.txt" || t_fail "setfattr tag"
	mv "$M/live/txt/doc2.txt" "$M/live/txt/doc2b.txt" || t_fail "mv"
	[ "$(xget "$M/live/txt/doc2b.txt" tag)" = moved ] || t_fail "the label did not follow mv"
	mv "$M/live/txt" "$M/live/txt2" || t_fail "mv of a directory"
	[ "$(xget "$M/live/txt2/doc1.txt" note)" = first ] || t_fail "labels did not follow the directory's mv"
	rm "$M/live/txt2/doc2b.txt" || t_fail "rm"
	echo refresh >"$M/.dmfs/ctl" || t_fail "refresh"
	t_dmfs meta export >"$T_ROOT/after-mv.jsonl" || t_fail "export after mv"
	# (meta get reads the table, whether or not the file exists)
	[ "$(t_dmfs meta get txt/doc1.txt)" = "{}" ] || t_fail "a row left at the old path: $(t_dmfs meta get txt/doc1.txt)"
	[ "$(t_dmfs meta get txt2/doc2b.txt)" = "{}" ] || t_fail "the row of a deleted file is still there"
	grep -q '"txt2/doc1.txt"' "$T_ROOT/after-mv.jsonl" || t_fail "no row at the new path"

	# --- read-only places ---
	t_dmfs snapshot --id s1 >/dev/null || t_fail "snapshot"
	echo refresh >"$M/.dmfs/ctl"
	out=$(setfattr -n user.x -v 1 "$M/snapshots/s1/top.bin" 2>&1) && t_fail "setfattr in a snapshot succeeded"
	echo "$out" | grep -q "Read-only" || t_fail "setfattr in a snapshot is not EROFS: $out"
	echo x 2>/dev/null >"$M/snapshots/s1/.dmfs.meta" && t_fail "a .dmfs.meta write in a snapshot"

	t_umount "$M"
	t_backend_stop
done
t_done
