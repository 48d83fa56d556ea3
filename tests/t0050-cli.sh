#!/bin/bash
# t0050-cli: --help and --version work; the man page documents every
# command, every mount option and every environment variable that --help
# names; bad usage is refused with status 2.
. "$(dirname "$0")/lib/common.sh"
T_RAN=1 # checks of its own, with or without a server

"$DMFS" --version | grep -qE '^dmfs [0-9]+\.[0-9]+' || t_fail "--version"
"$DMFS" --help >"$T_ROOT/help" || t_fail "--help"
grep -q "dmfs mount STORE MOUNTPOINT" "$T_ROOT/help" || t_fail "--help has no usage"
MAN=$T_SRC/man/dmfs.1
[ -f "$MAN" ] || t_fail "no man page"
man_text=$(MANWIDTH=200 man -l "$MAN" 2>/dev/null || cat "$MAN")
for opt in $("$DMFS" --list-options); do
	grep -q -- "$opt" "$MAN" || t_fail "man page does not document option $opt"
	grep -q -- "$opt" "$T_ROOT/help" || t_fail "--help does not list option $opt"
done
for v in $(grep -oE '(AWS|XDG)_[A-Z_]+' "$T_ROOT/help" | sort -u); do
	grep -q "$v" "$MAN" || t_fail "man page does not document $v"
done
for c in mount umount; do
	grep -q "dmfs $c\|^\.B $c\|$c " "$MAN" || t_fail "man page does not document $c"
done
[ -n "$man_text" ] || t_fail "man page does not render"
"$DMFS" nosuchcommand >/dev/null 2>&1
[ $? = 2 ] || t_fail "unknown command status"
"$DMFS" mount >/dev/null 2>&1
[ $? = 2 ] || t_fail "mount without arguments status"
t_done
