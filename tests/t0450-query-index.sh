#!/bin/bash
# t0450-query-index: live queries answered from the field index give what
# the walk gives (DMFS_QUERY_INDEX=0) and what an independent Python
# filter over the labels and the files gives:
#  - paths, --count, --format jsonl --auto and csv --auto, byte for byte;
#  - == < <= > >= startswith on int, float, bool and (unicode) string
#    fields, alone and in and-chains, also with automatic and key=value
#    path-segment fields, and under --under;
#  - after relabelling (setfattr), removing labels (setfattr -x), renaming
#    and removing files through the mount, and deleting files behind
#    dmfs's back (in the store directory / with awscli), whose labels stay
#    in the table: those must not be returned.
. "$(dirname "$0")/lib/common.sh"

SRC=$T_ROOT/src
LABELS=$T_ROOT/labels.jsonl
python3 - "$SRC" "$LABELS" <<'PY' || t_fail "making the tree"
import json, os, random, sys
src, out = sys.argv[1], sys.argv[2]
random.seed(11)
with open(out, "w") as f:
    for i in range(240):
        p = "%s/d%d/f%03d.%s" % (("grp=a", "grp=b", "plain")[i % 3], i % 4, i, ("txt", "bin")[i % 2])
        os.makedirs(os.path.dirname(os.path.join(src, p)), exist_ok=True)
        with open(os.path.join(src, p), "wb") as g:
            g.write(b"x" * (i % 50))
        r = {"path": p, "episode": i % 17, "ok": i % 5 == 0}
        if i % 10:
            r["difficulty"] = ("easy", "medium", "hard")[i % 3]
        if i % 4:
            r["score"] = round(random.random(), 3)
        if i % 6 == 0:
            r["label"] = ("Ünïcødé", "Ünder", "plain")[(i // 6) % 3]
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
PY

# expression <TAB> Python filter over r (labels), p (path), size
cat >"$T_ROOT/cases" <<'EOF'
episode == 3	r.get("episode") == 3
episode < 4	r.get("episode") is not None and r["episode"] < 4
episode <= 4	r.get("episode") is not None and r["episode"] <= 4
episode > 12	r.get("episode") is not None and r["episode"] > 12
episode >= 12	r.get("episode") is not None and r["episode"] >= 12
difficulty == "hard"	r.get("difficulty") == "hard"
difficulty startswith "me"	r.get("difficulty", "").startswith("me")
difficulty < "hard"	r.get("difficulty") is not None and r["difficulty"] < "hard"
score > 0.8	r.get("score") is not None and r["score"] > 0.8
score <= 0.2	r.get("score") is not None and r["score"] <= 0.2
ok == true	r.get("ok") is True
ok == false	r.get("ok") is False
label startswith "Ün"	r.get("label", "").startswith("Ün")
label == "Ünïcødé"	r.get("label") == "Ünïcødé"
episode == 3 and difficulty == "hard"	r.get("episode") == 3 and r.get("difficulty") == "hard"
episode > 10 and ext == "txt"	r.get("episode") is not None and r["episode"] > 10 and p.endswith(".txt")
difficulty == "easy" and score < 0.5 and size >= 10	r.get("difficulty") == "easy" and r.get("score") is not None and r["score"] < 0.5 and size >= 10
episode >= 8 and grp == "b"	r.get("episode") is not None and r["episode"] >= 8 and p.startswith("grp=b/")
episode == 3 or ok == true	r.get("episode") == 3 or r.get("ok") is True
EOF

# reference EXPR_PY [UNDER]: matching paths (existing files only), by bytes
reference() {
	python3 - "$LABELS" "$SRC" "$1" "${2:-}" <<'PY'
import json, os, sys
labels, src, expr, under = sys.argv[1:5]
out = []
for l in open(labels, encoding="utf-8"):
    r = json.loads(l)
    p = r["path"]
    f = os.path.join(src, p)
    if not os.path.isfile(f) or (under and not p.startswith(under + "/")):
        continue
    rel = p[len(under) + 1:] if under else p
    if eval(expr, {"r": r, "p": p, "size": os.path.getsize(f)}):
        out.append(rel)
for p in sorted(out, key=lambda s: s.encode()):
    print(p)
PY
}

# edit_labels PATH set FIELD JSON | del FIELD | mv NEWPATH: keep the
# reference labels in step with what the test does.
edit_labels() {
	python3 - "$LABELS" "$@" <<'PY'
import json, sys
labels, path, op = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(labels, encoding="utf-8")]
for r in rows:
    if r["path"] != path:
        continue
    if op == "set":
        r[sys.argv[4]] = json.loads(sys.argv[5])
    elif op == "del":
        r.pop(sys.argv[4], None)
    elif op == "mv":
        r["path"] = sys.argv[4]
with open(labels, "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
PY
}

# check_all WHEN: every case through the index = walk = reference
check_all() {
	local n=0 expr py under
	while IFS=$'\t' read -r expr py; do
		n=$((n + 1))
		for under in "" "grp=a"; do
			reference "$py" "$under" >"$T_ROOT/want" || t_fail "reference filter for: $expr"
			set -- ${under:+--under "$under"}
			t_dmfs query "$expr" "$@" >"$T_ROOT/idx" 2>"$T_ROOT/err" ||
				t_fail "$1: dmfs query '$expr' failed: $(cat "$T_ROOT/err")"
			DMFS_QUERY_INDEX=0 t_dmfs query "$expr" "$@" >"$T_ROOT/walk" 2>"$T_ROOT/err" ||
				t_fail "$1: walk of '$expr' failed: $(cat "$T_ROOT/err")"
			cmp -s "$T_ROOT/walk" "$T_ROOT/idx" ||
				t_fail "$WHEN: '$expr' ${under:+under $under}: index and walk differ: $(diff "$T_ROOT/walk" "$T_ROOT/idx" | head -5)"
			cmp -s "$T_ROOT/want" "$T_ROOT/idx" ||
				t_fail "$WHEN: '$expr' ${under:+under $under}: $(wc -l <"$T_ROOT/idx") paths, want $(wc -l <"$T_ROOT/want"): $(diff "$T_ROOT/want" "$T_ROOT/idx" | head -5)"
		done
		for fmt in "--count" "--format jsonl --auto" "--format csv --auto"; do
			t_dmfs query "$expr" $fmt >"$T_ROOT/idx" 2>"$T_ROOT/err" || t_fail "'$expr' $fmt: $(cat "$T_ROOT/err")"
			DMFS_QUERY_INDEX=0 t_dmfs query "$expr" $fmt >"$T_ROOT/walk" 2>"$T_ROOT/err" || t_fail "'$expr' $fmt (walk): $(cat "$T_ROOT/err")"
			cmp -s "$T_ROOT/walk" "$T_ROOT/idx" || t_fail "$WHEN: '$expr' $fmt: index and walk differ: $(diff "$T_ROOT/walk" "$T_ROOT/idx" | head -4)"
		done
	done <"$T_ROOT/cases"
	t_log "$WHEN: $n cases: index = walk = reference"
}

for kind in $(t_backends); do
	t_backend_start "$kind"
	rm -rf "$SRC.now" && cp -a "$SRC" "$SRC.now"
	cp "$LABELS" "$LABELS.orig"
	t_put_tree "$SRC"
	t_mount "$T_ROOT/mnt" stat_ttl=0,refresh=1
	M=$T_ROOT/mnt
	cp "$LABELS" "$M/live/.dmfs.meta" || t_fail "labelling: $(cat "$M/.dmfs/last-error")"
	echo refresh >"$M/.dmfs/ctl" || t_fail "refresh"
	WHEN="labelled" check_all

	# relabel, remove labels, rename, rm through the mount
	for i in 3 20 37 54; do
		p=$(sed -n "$((i + 1))p" "$LABELS" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["path"])')
		setfattr -n user.episode -v 3 "$M/live/$p" || t_fail "setfattr episode on $p"
		edit_labels "$p" set episode 3
		setfattr -n user.difficulty -v hard "$M/live/$p" || t_fail "setfattr difficulty on $p"
		edit_labels "$p" set difficulty '"hard"'
	done
	for i in 6 9 12; do
		p=$(sed -n "$((i + 1))p" "$LABELS" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["path"])')
		setfattr -x user.difficulty "$M/live/$p" 2>/dev/null; edit_labels "$p" del difficulty
		setfattr -x user.episode "$M/live/$p" || t_fail "setfattr -x episode on $p"
		edit_labels "$p" del episode
	done
	p=$(sed -n 33p "$LABELS" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["path"])')
	mv "$M/live/$p" "$M/live/plain/moved.txt" || t_fail "mv $p"
	mv "$SRC/$p" "$SRC/plain/moved.txt"
	edit_labels "$p" mv "plain/moved.txt"
	for i in 45 46 47; do
		p=$(sed -n "$((i + 1))p" "$LABELS" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["path"])')
		rm "$M/live/$p" || t_fail "rm $p"
		rm "$SRC/$p"
	done
	echo refresh >"$M/.dmfs/ctl" || t_fail "refresh"
	WHEN="relabelled" check_all

	# deleted behind dmfs's back: still labelled, never returned
	for i in 0 3 51 60 153; do
		p=$(sed -n "$((i + 1))p" "$LABELS" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["path"])')
		[ -f "$SRC/$p" ] || continue
		case $kind in
		file) rm "$T_STORE_DIR/$p" ;;
		*) s3_aws s3 rm --quiet "s3://$T_BUCKET/data/$p" || t_fail "aws s3 rm $p" ;;
		esac
		rm "$SRC/$p"
	done
	WHEN="deleted in the store" check_all

	t_umount "$M"
	t_backend_stop
	rm -rf "$SRC" && mv "$SRC.now" "$SRC"
	cp "$LABELS.orig" "$LABELS"
done
t_done
