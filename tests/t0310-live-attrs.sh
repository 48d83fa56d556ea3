#!/bin/bash
# t0310-live-attrs: modes, owners, times and symlinks in live/ are stored
# the way s3fs stores them (x-amz-meta-mode with the type bits, -uid,
# -gid, -mtime; a symlink is an object holding its target), so both tools
# agree: what dmfs sets reads the same through awscli, s3fs and a fresh
# dmfs mount, and what s3fs sets reads the same through dmfs.  On the file
# store the same metadata is in user.dmfs.* xattrs.
. "$(dirname "$0")/lib/common.sh"

# mode, uid, gid, mtime of KEY in the store, as "MODE UID GID MTIME".
stored_attrs() {
	case $T_KIND in
	file)
		local p=$T_STORE_DIR/$1 a out=""
		for a in mode uid gid mtime; do
			out+="$(getfattr --only-values -n "user.dmfs.$a" "$p" 2>/dev/null || echo -) "
		done
		echo "${out% }"
		;;
	*)
		s3_aws s3api head-object --bucket "$T_BUCKET" --key "data/$1" |
			python3 -c 'import json,sys
m=json.load(sys.stdin).get("Metadata", {})
print(" ".join(m.get(k, "-") for k in ("mode", "uid", "gid", "mtime")))'
		;;
	esac
}

# One piece of other metadata of KEY: sha256 (dmfs's) or ctype.
stored_other() {
	case $T_KIND in
	file) getfattr --only-values -n user.dmfs.sha256 "$T_STORE_DIR/$1" 2>/dev/null ;;
	*)
		s3_aws s3api head-object --bucket "$T_BUCKET" --key "data/$1" |
			python3 -c 'import json,sys
h=json.load(sys.stdin)
print(h.get("Metadata", {}).get("dmfs-sha256", "") if sys.argv[1] == "sha256" else h.get("ContentType", ""))' "$2"
		;;
	esac
}

# stat -c FORMAT, failing the test when stat does.
st() { stat -c "$1" "$2" || t_fail "stat $2"; }

expect() { # WHAT GOT WANT
	[ "$2" = "$3" ] || t_fail "$1: got '$2', want '$3'"
}

T1=981173106 # 2001-02-03 04:05:06 UTC
T2=1000000000
T3=1100000000

for kind in $(t_backends); do
	t_backend_start "$kind"
	M=$T_ROOT/mnt
	t_mount "$M" stat_ttl=1
	L=$M/live
	umask 022
	mkdir "$L/d" || t_fail "mkdir"
	echo "some text" >"$L/d/f.txt" || t_fail "create"

	# A new file carries mode, uid, gid and mtime, as s3fs writes them.
	read -r m u g t <<<"$(stored_attrs d/f.txt)"
	expect "new file mode" "$m" $((8#100644))
	expect "new file uid" "$u" "$(id -u)"
	expect "new file gid" "$g" "$(id -g)"
	[ "$t" != - ] && [ $((t - $(date +%s))) -le 5 ] && [ $(($(date +%s) - t)) -le 60 ] ||
		t_fail "new file mtime $t"
	read -r m u g t <<<"$(stored_attrs d/)"
	expect "mkdir mode" "$m" $((8#40755))
	sha=$(stored_other d/f.txt sha256)
	[ -n "$sha" ] || t_fail "no sha256 on a new file"

	# chmod, chown, touch -d through dmfs.
	chmod 640 "$L/d/f.txt" || t_fail "chmod"
	chown 1234:2345 "$L/d/f.txt" || t_fail "chown"
	touch -m -d @$T1 "$L/d/f.txt" || t_fail "touch -d"
	chmod 700 "$L/d" || t_fail "chmod of a directory"
	expect "mode through dmfs" "$(st %a:%u:%g:%Y "$L/d/f.txt")" "640:1234:2345:$T1"
	expect "dir mode through dmfs" "$(st %a "$L/d")" 700
	expect "stored attributes" "$(stored_attrs d/f.txt)" "$((8#100640)) 1234 2345 $T1"
	expect "stored dir attributes" "$(stored_attrs d/ | cut -d' ' -f1)" $((8#40700))
	expect "sha256 kept by chmod" "$(stored_other d/f.txt sha256)" "$sha"
	[ "$kind" = file ] || expect "Content-Type kept by chmod" \
		"$(stored_other d/f.txt ctype)" "application/octet-stream"
	expect "content after chmod" "$(cat "$L/d/f.txt")" "some text"

	# An implicit directory (no marker) gets one.
	mkdir -p "$T_ROOT/src/imp"
	echo x >"$T_ROOT/src/imp/x.txt"
	t_put_tree "$T_ROOT/src"
	sleep 1.2
	chmod 750 "$L/imp" || t_fail "chmod of a directory without marker"
	expect "implicit dir mode" "$(st %a "$L/imp")" 750

	# Attributes set while the file is open for writing go with the
	# upload; cp -p keeps the time; rename keeps everything.
	exec 3>"$L/d/g.txt"
	echo "written" >&3
	chmod 600 "$L/d/g.txt" || t_fail "chmod while open"
	exec 3>&-
	expect "mode set while open" "$(stored_attrs d/g.txt | cut -d' ' -f1)" $((8#100600))
	echo copy >"$T_ROOT/cp-src"
	chmod 604 "$T_ROOT/cp-src"
	touch -m -d @$T2 "$T_ROOT/cp-src"
	# (Not cp -p: its ACL copy needs setxattr of system.posix_acl_access
	# to fail with ENOTSUP; live/ answers EROFS so far.)
	cp --preserve=timestamps,ownership "$T_ROOT/cp-src" "$L/d/cp.txt" || t_fail "cp --preserve"
	expect "cp --preserve" "$(stored_attrs d/cp.txt)" "$((8#100604)) 0 0 $T2"
	mv "$L/d/cp.txt" "$L/d/moved.txt" || t_fail "mv"
	expect "attributes after rename" "$(stored_attrs d/moved.txt)" "$((8#100604)) 0 0 $T2"
	# A write makes the stored time "now" again.
	echo more >>"$L/d/moved.txt"
	t=$(stored_attrs d/moved.txt | cut -d' ' -f4)
	[ "$t" -gt $T2 ] || t_fail "mtime not updated by a write: $t"
	expect "mode kept by a write" "$(stored_attrs d/moved.txt | cut -d' ' -f1)" $((8#100604))

	# Symlinks.
	ln -s f.txt "$L/d/link" || t_fail "ln -s"
	expect "readlink" "$(readlink "$L/d/link")" f.txt
	expect "link type" "$(st %F "$L/d/link")" "symbolic link"
	expect "through the link" "$(cat "$L/d/link")" "some text"
	expect "ls -l of a link" "$(ls -l "$L/d" | awk '$NF == "f.txt" && $(NF-2) == "link" {print substr($1,1,1)}')" l
	read -r m u g t <<<"$(stored_attrs d/link)"
	expect "stored link mode" "$m" $((8#120777))
	expect "stored link body" "$(t_store_cat d/link)" f.txt
	ln -s f.txt "$L/d/link" 2>/dev/null && t_fail "ln -s over an existing name"

	# A fresh mount reads them back.
	t_umount "$M"
	t_mount "$M" stat_ttl=1
	expect "fresh mount: file" "$(st %a:%u:%g:%Y "$L/d/f.txt")" "640:1234:2345:$T1"
	expect "fresh mount: dir" "$(st %a "$L/d")" 700
	expect "fresh mount: readlink" "$(readlink "$L/d/link")" f.txt
	expect "fresh mount: ls -l" "$(ls -l "$L/d" | awk '$NF == "f.txt" && $(NF-2) == "link" {print $1}')" lrwxrwxrwx
	t_umount "$M"
	# object_attrs=0: listings alone, the defaults.
	t_mount "$M" stat_ttl=1 object_attrs=0
	expect "object_attrs=0" "$(st %a "$L/d/f.txt")" 644
	t_umount "$M"

	# Attributes set on a file not uploaded yet survive kill -9: the
	# next mount uploads it with them.
	t_mount "$M" stat_ttl=1
	pid=$(t_status "$M" pid)
	python3 - "$L/d/crash.txt" "$pid" $T2 <<'PY' || t_fail "write before kill"
import os, signal, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
os.write(fd, b"not closed\n")
os.fchmod(fd, 0o640)
os.utime(fd, (int(sys.argv[3]), int(sys.argv[3])))
os.kill(int(sys.argv[2]), signal.SIGKILL)
PY
	t_umount_killed "$M"
	t_mount "$M" stat_ttl=1 debug
	grep -q "recovered d/crash.txt" "$T_LOG" || t_fail "recovery not logged"
	expect "recovered with its attributes" "$(stored_attrs d/crash.txt)" "$((8#100640)) $(id -u) $(id -g) $T2"
	expect "recovered, through dmfs" "$(st %a:%Y "$L/d/crash.txt")" "640:$T2"
	t_umount "$M"

	if [ "$kind" = file ]; then
		# Another writer's metadata (here set by hand) shows.
		setfattr -n user.dmfs.mode -v $((8#100755)) "$T_STORE_DIR/imp/x.txt"
		setfattr -n user.dmfs.mtime -v $T3 "$T_STORE_DIR/imp/x.txt"
		t_mount "$M" stat_ttl=1
		expect "mode set in the store" "$(st %a:%Y "$L/imp/x.txt")" "755:$T3"
		t_umount "$M"
	elif command -v s3fs >/dev/null; then
		# s3fs on the same bucket reads what dmfs stored ...
		pw=$T_ROOT/passwd
		printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$pw"
		chmod 600 "$pw"
		S=$T_ROOT/s3fs
		mkdir -p "$S"
		s3fs "$T_BUCKET:/data" "$S" -o "url=$S3_ENDPOINT,use_path_request_style,passwd_file=$pw,stat_cache_expire=1" ||
			t_fail "s3fs mount"
		T_MOUNTS+=("$S")
		expect "s3fs: file" "$(st %a:%u:%g:%Y "$S/d/f.txt")" "640:1234:2345:$T1"
		expect "s3fs: dir" "$(st %a "$S/d")" 700
		expect "s3fs: readlink" "$(readlink "$S/d/link")" f.txt
		expect "s3fs: link type" "$(st %F "$S/d/link")" "symbolic link"
		# ... and dmfs reads what s3fs stores, also a mount that saw
		# the old values (a metadata change keeps the ETag: seen
		# after stat_ttl).
		t_mount "$M" stat_ttl=1
		expect "before s3fs changes it" "$(st %a "$L/d/f.txt")" 640
		chmod 604 "$S/d/f.txt" || t_fail "s3fs chmod"
		# (s3fs 1.90 stores no time for touch -m alone.)
		touch -d @$T3 "$S/d/f.txt" || t_fail "s3fs touch"
		chown 4321:5432 "$S/d/f.txt" || t_fail "s3fs chown"
		echo "from s3fs" >"$S/d/s.txt"
		chmod 751 "$S/d/s.txt"
		ln -s s.txt "$S/d/slink" || t_fail "s3fs ln -s"
		mkdir "$S/d/sdir" && chmod 711 "$S/d/sdir"
		fusermount3 -u "$S"
		sleep 2.2
		expect "from s3fs: file" "$(st %a:%u:%g:%Y "$L/d/f.txt")" "604:4321:5432:$T3"
		expect "from s3fs: new file" "$(st %a "$L/d/s.txt")" 751
		expect "from s3fs: readlink" "$(readlink "$L/d/slink")" s.txt
		expect "from s3fs: through the link" "$(cat "$L/d/slink")" "from s3fs"
		expect "from s3fs: ls -l" "$(ls -l "$L/d" | awk '$NF == "s.txt" && $(NF-2) == "slink" {print $1}')" lrwxrwxrwx
		expect "from s3fs: dir" "$(st %a "$L/d/sdir")" 711
		# A chmod through dmfs keeps the metadata it does not know
		# (s3fs's atime, ctime).
		chmod 640 "$L/d/f.txt" || t_fail "chmod of an s3fs file"
		s3_aws s3api head-object --bucket "$T_BUCKET" --key data/d/f.txt |
			python3 -c 'import json,sys
m=json.load(sys.stdin)["Metadata"]
sys.exit(not (m.get("atime") == sys.argv[1] and m.get("mode") == sys.argv[2]))' $T3 $((8#100640)) ||
			t_fail "s3fs metadata lost by a chmod through dmfs"
		t_umount "$M"
	else
		t_log "s3fs is not installed: the s3fs checks are skipped"
	fi
	t_backend_stop
done
t_done
