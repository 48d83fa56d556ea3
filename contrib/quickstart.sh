#!/bin/bash
# contrib/quickstart.sh - the README's first command: install what dmfs
# needs on Debian 12, build it, and show its main job on a local file://
# store (no server): mount, ls, read a file, the status, unmount; then
# versions, and metadata with queries.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
need=(build-essential autoconf automake pkg-config fuse3 libfuse3-dev
	libcurl4-openssl-dev libssl-dev libcjson-dev liblmdb-dev
	libexpat1-dev attr python3)
missing=()
for p in "${need[@]}"; do
	dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -q '^installed$' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x ./dmfs ] || [ ! -f Makefile ]; then
	autoreconf -fi >/dev/null 2>&1
	./configure --quiet
fi
make -j"$(nproc)" --no-print-directory -s dmfs

demo=$(mktemp -d /tmp/dmfs-demo.XXXXXX)
store=$demo/store mnt=$demo/mnt
mkdir -p "$store/datasets/vmeval/chess_0003" "$store/datasets/vmeval/chess_0004" "$mnt"
echo '{"task": "chess", "frames": 12}' >"$store/datasets/vmeval/chess_0003/meta.json"
echo '{"task": "chess", "frames": 9}' >"$store/datasets/vmeval/chess_0004/meta.json"
head -c 50000000 /dev/urandom >"$store/datasets/vmeval/chess_0003/video.bin"
trap 'fusermount3 -u "$mnt" 2>/dev/null || true; rm -rf "$demo"' EXIT

set -x
./dmfs mount "file://$store" "$mnt" -o cache_dir="$demo/cache"
ls -l "$mnt" "$mnt/live/datasets/vmeval"
cat "$mnt/live/datasets/vmeval/chess_0003/meta.json"
cmp "$mnt/live/datasets/vmeval/chess_0003/video.bin" "$store/datasets/vmeval/chess_0003/video.bin"
getfattr -n dmfs.cached "$mnt/live/datasets/vmeval/chess_0003/video.bin"
cat "$mnt/.dmfs/status"
./dmfs umount "$mnt"
# Versions: freeze the dataset, change the live tree, compare.
./dmfs commit "file://$store" vmeval v1 --from live/datasets/vmeval -m "first cut" -o cache_dir="$demo/cache"
echo '{"task": "chess", "frames": 10}' >"$store/datasets/vmeval/chess_0004/meta.json"
./dmfs commit "file://$store" vmeval v2 --from live/datasets/vmeval -m "fix frames" -o cache_dir="$demo/cache"
./dmfs log "file://$store" -o cache_dir="$demo/cache"
./dmfs diff "file://$store" datasets/vmeval/v1 datasets/vmeval/v2 -o cache_dir="$demo/cache"
./dmfs fsck "file://$store" -o cache_dir="$demo/cache"
# The versions as directories: read-only, latest -> v2, old bytes kept.
./dmfs mount "file://$store" "$mnt" -o cache_dir="$demo/cache"
ls -l "$mnt/datasets/vmeval"
cat "$mnt/datasets/vmeval/v1/chess_0004/meta.json" "$mnt/datasets/vmeval/latest/chess_0004/meta.json"
echo 'commit vmeval v3 live/datasets/vmeval -m "through the mount"' >"$mnt/.dmfs/ctl"
cat "$mnt/.dmfs/log"
# Metadata: label files with setfattr or a batch of JSON Lines, ask a
# query, get a directory of exactly the matching files.
setfattr -n user.difficulty -v hard "$mnt/live/datasets/vmeval/chess_0003/meta.json"
printf '%s\n' '{"path": "chess_0003/video.bin", "difficulty": "hard", "frames": 12}' \
	'{"path": "chess_0004/meta.json", "difficulty": "easy", "frames": 9}' >"$demo/labels.jsonl"
cp "$demo/labels.jsonl" "$mnt/live/datasets/vmeval/.dmfs.meta"
getfattr -d "$mnt/live/datasets/vmeval/chess_0003/video.bin"
mkdir "$mnt/queries/hard"
echo 'difficulty == "hard"' >"$mnt/queries/hard/.query"
find "$mnt/queries/hard" -type f
./dmfs umount "$mnt"
./dmfs query "file://$store" 'difficulty == "hard" and frames > 10' --format jsonl -o cache_dir="$demo/cache"
./dmfs commit "file://$store" hard v1 --from-query hard -o cache_dir="$demo/cache"
./dmfs meta log "file://$store" -o cache_dir="$demo/cache"
