#!/bin/bash
# t0410-query: the query language, `dmfs query` and query directories.
#  - 300 files labelled through .dmfs.meta; each operator (== != < <= > >=
#    contains startswith glob, is null, is not null, and/or/not, & | ~,
#    parentheses, int/float/bool/string literals, unicode, keys with
#    quotes, automatic fields and key=value path segments) gives exactly
#    what an independent Python filter over the labels gives;
#  - parse and type errors: exit 2 and a message pointing at the place;
#  - queries/NAME (mkdir + .query, and dmfs query --save) lists exactly
#    the `dmfs query` paths, with the live bytes, read-only;
#    .results.jsonl has path + metadata of every match; queries/@/ENCODED/
#    needs no saving; the directory follows label changes;
#  - writes inside query directories fail with EROFS.
. "$(dirname "$0")/lib/common.sh"

SRC=$T_ROOT/src
python3 - "$SRC" "$T_ROOT/labels.jsonl" <<'PY' || t_fail "making the tree"
import json, os, random, sys
src, out = sys.argv[1], sys.argv[2]
random.seed(7)
rows = []
for i in range(300):
    d = "task=%s/provider=%s" % (("ocr", "asr", "chess")[i % 3], ("hf", "kaggle")[i % 2])
    name = "f%03d.%s" % (i, ("png", "txt", "json")[i % 3])
    p = os.path.join(src, d, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(("file %d\n" % i).encode() * (i % 7 + 1))
    r = {"path": d + "/" + name}
    if i % 10:
        r["difficulty"] = ("easy", "medium", "hard")[i % 3]
    if i % 4:
        r["score"] = round(random.random(), 3)
    r["episode"] = i % 17
    r["ok"] = i % 5 == 0
    if i % 6 == 0:
        r["label"] = ("chat yoda", "Ünïcødé", 'say "hi"', "plain")[(i // 6) % 4]
    if i % 9 == 0:
        r['we"ird key'] = "q%d" % i
    rows.append(r)
with open(out, "w") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
PY

# The queries and their independent reference filters (Python over the
# labels and the path).  Tab-separated: expression, then a Python
# expression over r (the row) and p (the path).
cat >"$T_ROOT/cases" <<'EOF'
difficulty == "hard"	r.get("difficulty") == "hard"
difficulty != "hard"	r.get("difficulty") != "hard"
episode > 10	r["episode"] > 10
episode >= 10 and episode <= 12	10 <= r["episode"] <= 12
score < 0.5	r.get("score") is not None and r["score"] < 0.5
score > 0	r.get("score") is not None and r["score"] > 0
ok == true	r["ok"]
NOT ok == true	not r["ok"]
label contains "yoda"	"yoda" in r.get("label", "\x00")
label startswith "Ün"	r.get("label", "").startswith("Ün")
label == "Ünïcødé"	r.get("label") == "Ünïcødé"
label == 'say "hi"'	r.get("label") == 'say "hi"'
label == "say \"hi\""	r.get("label") == 'say "hi"'
label == "\u00dcn\u00efc\u00f8d\u00e9"	r.get("label") == "Ünïcødé"
label is null	"label" not in r
label is not null	"label" in r
`we"ird key` == "q18"	r.get('we"ird key') == "q18"
difficulty == "hard" or episode == 3 and ok == true	r.get("difficulty") == "hard" or (r["episode"] == 3 and r["ok"])
(difficulty == "hard" or episode == 3) and ok == true	(r.get("difficulty") == "hard" or r["episode"] == 3) and r["ok"]
not difficulty == "easy" and episode < 5	(not r.get("difficulty") == "easy") and r["episode"] < 5
difficulty == "hard" | ~(episode > 2) & ok == false	r.get("difficulty") == "hard" or ((not r["episode"] > 2) and not r["ok"])
task == "chess" and provider == "hf"	"task=chess/" in p and "provider=hf/" in p
ext == "json" and size > 30	p.endswith(".json") and size > 30
name glob "f0?1.*"	__import__("fnmatch").fnmatchcase(p.rsplit("/", 1)[1], "f0?1.*")
path glob "task=ocr/*"	p.startswith("task=ocr/")
dir == "task=asr/provider=kaggle"	p.rsplit("/", 1)[0] == "task=asr/provider=kaggle"
score >= 0.25 and score <= 0.75 and difficulty != "medium"	r.get("score") is not None and 0.25 <= r["score"] <= 0.75 and r.get("difficulty") != "medium"
EOF

# reference EXPR_PY: the matching paths, sorted by bytes
reference() {
	python3 - "$T_ROOT/labels.jsonl" "$SRC" "$1" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
out = []
for r in rows:
    p = r["path"]
    size = os.path.getsize(os.path.join(sys.argv[2], p))
    if eval(sys.argv[3], {"r": r, "p": p, "size": size}):
        out.append(p)
for p in sorted(out, key=lambda s: s.encode()):
    print(p)
PY
}

for kind in $(t_backends); do
	t_backend_start "$kind"
	t_put_tree "$SRC"
	t_mount "$T_ROOT/mnt" stat_ttl=1,refresh=1
	M=$T_ROOT/mnt
	cp "$T_ROOT/labels.jsonl" "$M/live/.dmfs.meta" || t_fail "labelling: $(cat "$M/.dmfs/last-error")"
	echo refresh >"$M/.dmfs/ctl" || t_fail "refresh"

	n=0
	while IFS=$'\t' read -r expr py; do
		n=$((n + 1))
		reference "$py" >"$T_ROOT/want.$n" || t_fail "reference filter for: $expr"
		t_dmfs query "$expr" >"$T_ROOT/got.$n" 2>"$T_ROOT/err.$n" ||
			t_fail "dmfs query '$expr' failed: $(cat "$T_ROOT/err.$n")"
		cmp -s "$T_ROOT/want.$n" "$T_ROOT/got.$n" ||
			t_fail "query '$expr': $(wc -l <"$T_ROOT/got.$n") paths, want $(wc -l <"$T_ROOT/want.$n"): $(diff "$T_ROOT/want.$n" "$T_ROOT/got.$n" | head -5)"
		[ -s "$T_ROOT/want.$n" ] || t_fail "case '$expr' matches nothing: a useless case"
	done <"$T_ROOT/cases"
	t_log "$n query cases agree with the reference filter"

	# --count and the other formats
	[ "$(t_dmfs query 'difficulty == "hard"' --count)" = "$(wc -l <"$T_ROOT/want.1")" ] || t_fail "--count"
	t_dmfs query 'difficulty == "hard"' --format jsonl >"$T_ROOT/q.jsonl" || t_fail "--format jsonl"
	python3 -c '
import json,sys
rows=[json.loads(l) for l in open(sys.argv[1])]
assert all(r["difficulty"]=="hard" and "episode" in r for r in rows), rows[:2]
assert len(rows)==int(sys.argv[2]), len(rows)' "$T_ROOT/q.jsonl" "$(wc -l <"$T_ROOT/want.1")" || t_fail "jsonl rows"
	t_dmfs query 'episode == 3' --format csv | head -1 | grep -q '^path,' || t_fail "--format csv header"

	# --- errors point at the place; type errors are errors ---
	for c in 'score >|1:8: expected a value after' 'episode == 3 and|1:17:' '(episode == 3|1:14:' \
		'label == "abc|1:10:' 'episode === 3|1:11:' 'difficulty == 5|difficulty' \
		'episode contains "x"|episode' 'label > true|label'; do
		expr=${c%%|*} want=${c#*|}
		t_dmfs query "$expr" >/dev/null 2>"$T_ROOT/err"
		[ $? = 2 ] || t_fail "query '$expr': exit status not 2"
		grep -qF -- "$want" "$T_ROOT/err" || t_fail "query '$expr': error does not say '$want': $(cat "$T_ROOT/err")"
	done

	# --- query directories ---
	T_ALLOW_ERRORS=0
	mkdir "$M/queries/hard" || t_fail "mkdir queries/hard"
	echo 'difficulty == "hard"' >"$M/queries/hard/.query" || t_fail "writing .query: $(cat "$M/.dmfs/last-error")"
	(cd "$M/queries/hard" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$T_ROOT/dir.hard"
	cmp -s "$T_ROOT/want.1" "$T_ROOT/dir.hard" || t_fail "queries/hard lists other files: $(diff "$T_ROOT/want.1" "$T_ROOT/dir.hard" | head)"
	first=$(head -1 "$T_ROOT/want.1")
	cmp -s "$SRC/$first" "$M/queries/hard/$first" || t_fail "queries/hard/$first: bytes differ from the source"
	grep -q 'difficulty == "hard"' "$M/queries/hard/.query" || t_fail ".query does not read back"
	[ "$(getfattr --only-values -n user.difficulty "$M/queries/hard/$first")" = hard ] ||
		t_fail "a query result does not carry its labels as xattrs"
	python3 - "$M/queries/hard/.results.jsonl" "$T_ROOT/want.1" <<'PY' || t_fail ".results.jsonl"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
want = [l.rstrip("\n") for l in open(sys.argv[2])]
assert [r["path"] for r in rows] == want, ([r["path"] for r in rows][:3], want[:3])
assert all(r["difficulty"] == "hard" and "size" in r and "mtime" in r for r in rows)
PY
	# dmfs query --save: every mount sees it
	t_dmfs query 'task == "chess" and provider == "hf"' --save chesshf >/dev/null || t_fail "dmfs query --save"
	ls "$M/queries" | grep -qx chesshf || t_fail "a saved query is not listed in queries/"
	ls "$M/queries" | grep -qx hard || t_fail "queries/hard is not listed"
	(cd "$M/queries/chesshf" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$T_ROOT/dir.chess"
	cmp -s "$T_ROOT/want.22" "$T_ROOT/dir.chess" || t_fail "queries/chesshf: $(diff "$T_ROOT/want.22" "$T_ROOT/dir.chess" | head -3)"
	[ "$(t_dmfs query --saved hard | wc -l)" = "$(wc -l <"$T_ROOT/want.1")" ] || t_fail "dmfs query --saved hard"
	t_dmfs query --list | grep -qx hard || t_fail "dmfs query --list lacks hard"

	# ad hoc: queries/@/<percent-encoded>/
	enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' 'episode > 10')
	(cd "$M/queries/@/$enc" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$T_ROOT/dir.adhoc"
	cmp -s "$T_ROOT/want.3" "$T_ROOT/dir.adhoc" || t_fail "queries/@/$enc: $(diff "$T_ROOT/want.3" "$T_ROOT/dir.adhoc" | head -3)"

	# the directory follows label changes (within the refresh interval)
	f=$(sed -n 2p "$T_ROOT/want.1")
	setfattr -n user.difficulty -v easy "$M/live/$f" || t_fail "relabel"
	sleep 2
	[ -e "$M/queries/hard/$f" ] && t_fail "queries/hard still has $f after relabelling"
	(cd "$M/queries/hard" && find . -type f | wc -l) | grep -qx "$(($(wc -l <"$T_ROOT/want.1") - 1))" ||
		t_fail "queries/hard did not shrink by one"

	# read-only
	T_ALLOW_ERRORS=1
	echo x 2>"$T_ROOT/err" >"$M/queries/hard/$first" && t_fail "writing a query result"
	grep -q "Read-only" "$T_ROOT/err" || t_fail "writing a query result: not EROFS: $(cat "$T_ROOT/err")"
	touch "$M/queries/hard/newfile" 2>"$T_ROOT/err" && t_fail "creating a file in a query dir"
	rm "$M/queries/hard/$first" 2>/dev/null && t_fail "rm in a query dir"
	out=$(setfattr -n user.x -v 1 "$M/queries/hard/$first" 2>&1) && t_fail "setfattr in a query dir succeeded"
	echo "$out" | grep -q "Read-only" || t_fail "setfattr in a query dir: not EROFS: $out"
	echo 'difficulty >' >"$M/queries/hard/.query" 2>/dev/null && t_fail "a malformed .query was accepted"
	grep -q "1:13: expected a value after" "$M/.dmfs/last-error" || t_fail "last-error for a bad .query: $(cat "$M/.dmfs/last-error")"
	t_log_reset
	T_ALLOW_ERRORS=0
	rmdir "$M/queries/hard" || t_fail "rmdir queries/hard"
	t_dmfs query --saved hard >/dev/null 2>&1 && t_fail "queries/hard still saved after rmdir"

	t_umount "$M"
	t_backend_stop
done
t_done
