#!/bin/bash
# t0440-meta-scale: a 100 000-row batch applies in seconds.
#  - 100 000 files labelled with 4 fields by one `cp` into .dmfs.meta
#    (JSON Lines), then relabelled by `dmfs meta import` (CSV), each within
#    a generous bound (the benchmark, tests/bench/bench-meta.sh, measures
#    the rate);
#  - every row arrived (queries count exactly what the generator wrote);
#  - a bad row (a type clash) at line 99 999 of a 100 000-row batch
#    applies nothing, and last-error names its file.
# On the file:// store only: 100 000 objects are a benchmark's worth of
# uploads to a local S3 server; what is measured here is the table.
. "$(dirname "$0")/lib/common.sh"

N=${DMFS_TEST_META_ROWS:-100000}
BOUND=${DMFS_TEST_META_SECONDS:-60}

for kind in $(t_backends); do
	[ "$kind" = file ] || continue
	t_backend_start "$kind"
	python3 - "$T_STORE_DIR" "$N" "$T_ROOT" <<'PY' || t_fail "making the tree"
import json, os, sys
root, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(out + "/rows.jsonl", "w") as j, open(out + "/rows.csv", "w") as c, \
        open(out + "/bad.jsonl", "w") as b:
    c.write("path,grade\n")
    for i in range(n):
        d = "d%02d" % (i % 100)
        p = "%s/f%06d" % (d, i)
        if i < 100:
            os.makedirs(os.path.join(root, d), exist_ok=True)
        os.close(os.open(os.path.join(root, p), os.O_CREAT | os.O_WRONLY, 0o644))
        row = {"path": p, "i": i, "even": i % 2 == 0, "tag": "t%d" % (i % 10), "x": i / 7}
        j.write(json.dumps(row) + "\n")
        c.write("%s,%s\n" % (p, "abc"[i % 3]))
        b.write(json.dumps({"path": p, "mark": 1 if i != n - 2 else "oops"}) + "\n")
PY
	t_mount "$T_ROOT/mnt" stat_ttl=60
	M=$T_ROOT/mnt

	t0=$(date +%s.%N)
	cp "$T_ROOT/rows.jsonl" "$M/live/.dmfs.meta" || t_fail "the $N-row batch was refused: $(cat "$M/.dmfs/last-error")"
	t1=$(date +%s.%N)
	s=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
	t_log "$N rows x 4 fields through .dmfs.meta: $s s"
	python3 -c "import sys; sys.exit(0 if $t1 - $t0 < $BOUND else 1)" || t_fail "$N rows took $s s (bound $BOUND s)"
	echo refresh >"$M/.dmfs/ctl" || t_fail "refresh"

	[ "$(t_dmfs query 'even == true' --count)" = $((N / 2)) ] || t_fail "even rows: $(t_dmfs query 'even == true' --count)"
	[ "$(t_dmfs query 'tag == "t3" and i >= 0' --count)" = $((N / 10)) ] || t_fail "tag rows"
	[ "$(getfattr --only-values -n user.i "$M/live/d07/f000007")" = 7 ] || t_fail "user.i of f000007"

	t0=$(date +%s.%N)
	t_dmfs meta import "$T_ROOT/rows.csv" >/dev/null || t_fail "dmfs meta import of $N CSV rows"
	t1=$(date +%s.%N)
	t_log "$N CSV rows through dmfs meta import: $(python3 -c "print(f'{$t1 - $t0:.2f}')") s"
	[ "$(t_dmfs query 'grade == "b"' --count)" = $(((N + 1) / 3)) ] || t_fail "grade rows: $(t_dmfs query 'grade == "b"' --count)"

	T_ALLOW_ERRORS=1
	cp "$T_ROOT/bad.jsonl" "$M/live/.dmfs.meta" 2>/dev/null && t_fail "a batch with a bad row near its end was accepted"
	grep -q "$(printf 'f%06d' $((N - 2)))" "$M/.dmfs/last-error" || t_fail "last-error: $(cat "$M/.dmfs/last-error")"
	t_log_reset
	T_ALLOW_ERRORS=0
	[ "$(t_dmfs query 'mark is not null' --count)" = 0 ] || t_fail "rows of the refused batch were applied"

	t_umount "$M"
	t_backend_stop
done
t_done
