#!/bin/bash
# tests/setup-deps.sh - install everything dmfs needs to build, test and
# benchmark, on Debian 12.  Idempotent: a second run changes nothing and
# does not touch apt when every package is already installed.
#
#   - Debian packages: toolchain, libraries, FUSE, the peers (s3fs, rclone),
#     the clients (awscli, s3cmd), the benchmark tools (fio, hyperfine) and
#     Ceph (radosgw, ceph-mon, ceph-osd, ceph-common) for the RGW test server.
#   - s3rver 3.7.1 from npm, into $DMFS_TEST_TOOLS/s3rver
#     (default /var/lib/dmfs-test-tools/s3rver), patched so that listings
#     with a delimiter show the common prefixes of deeply nested keys
#     (see "The S3 servers in tests" in DESIGN.md).
#
# Environment: DMFS_TEST_TOOLS (where npm tools go), DMFS_S3RVER_DIR (the
# s3rver prefix itself; overrides DMFS_TEST_TOOLS for s3rver).
set -euo pipefail

die() {
	echo "setup-deps: error: $*" >&2
	exit 1
}
say() {
	echo "setup-deps: $*"
}

PACKAGES=(
	build-essential autoconf automake libtool pkg-config
	fuse3 libfuse3-dev libcurl4-openssl-dev libssl-dev libcjson-dev
	liblmdb-dev libexpat1-dev lmdb-utils attr
	s3fs rclone awscli s3cmd fio hyperfine
	radosgw ceph-mon ceph-osd ceph-common
	curl ca-certificates python3 psmisc socat openssl cppcheck
)
S3RVER_VERSION=3.7.1
TOOLS_DIR=${DMFS_TEST_TOOLS:-/var/lib/dmfs-test-tools}
S3RVER_PREFIX=${DMFS_S3RVER_DIR:-$TOOLS_DIR/s3rver}
S3RVER_PKG=$S3RVER_PREFIX/node_modules/s3rver

# Run as root, or through sudo when it is there.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 ||
		die "not root and no sudo: run this script as root"
	SUDO=(sudo)
fi

pkg_installed() {
	local status
	status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) ||
		return 1
	[ "$status" = installed ]
}

# --- Debian packages --------------------------------------------------------

want=("${PACKAGES[@]}")
# npm (and node) come from Debian too when the machine has none.
command -v npm >/dev/null 2>&1 || want+=(nodejs npm)
command -v node >/dev/null 2>&1 || want+=(nodejs)

missing=()
for p in "${want[@]}"; do
	pkg_installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	say "all ${#want[@]} Debian packages already installed"
else
	say "installing ${#missing[@]} Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${SUDO[@]}" apt-get update ||
		die "apt-get update failed"
	"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}" ||
		die "apt-get install failed for: ${missing[*]}"
	for p in "${missing[@]}"; do
		pkg_installed "$p" || die "package $p is still not installed"
	done
fi

# --- s3rver from npm --------------------------------------------------------

command -v node >/dev/null 2>&1 || die "node not found after installing nodejs"
command -v npm >/dev/null 2>&1 || die "npm not found after installing npm"

have_version=
if [ -f "$S3RVER_PKG/package.json" ]; then
	have_version=$(node -p "require(process.argv[1]).version" \
		"$S3RVER_PKG/package.json" 2>/dev/null || true)
fi
if [ "$have_version" = "$S3RVER_VERSION" ]; then
	say "s3rver $S3RVER_VERSION already in $S3RVER_PREFIX"
else
	say "installing s3rver@$S3RVER_VERSION into $S3RVER_PREFIX"
	"${SUDO[@]}" mkdir -p "$S3RVER_PREFIX"
	"${SUDO[@]}" npm install --prefix "$S3RVER_PREFIX" --no-audit --no-fund \
		"s3rver@$S3RVER_VERSION" ||
		die "npm install s3rver@$S3RVER_VERSION failed"
	[ -f "$S3RVER_PKG/bin/s3rver.js" ] ||
		die "npm install finished but $S3RVER_PKG/bin/s3rver.js is missing"
fi

# --- patch s3rver: keep common prefixes of deeply nested keys -----------------
#
# FilesystemStore.listObjects walks the bucket directory with a filter that
# prunes directories "beneath a common prefix" before their objects are
# seen, so a key q/c/d/f.txt produces no CommonPrefix q/ when listing the
# root with delimiter "/".  The fix is to delete exactly that `if` block; the
# walk then sees every object under the prefix and the loop below it adds
# the common prefix as it should.

FSJS=$S3RVER_PKG/lib/stores/filesystem.js
[ -f "$FSJS" ] || die "$FSJS not found"

"${SUDO[@]}" python3 - "$FSJS" <<'EOF' || die "patching $FSJS failed"
import sys

path = sys.argv[1]
MARK = "// dmfs-test-patch: nested common prefix pruning removed"
BLOCK = """        if (
          delimiterEnc &&
          dirPath.slice(prefixPath.length).indexOf(delimiterEnc) !== -1
        ) {
          // avoid directories occurring beneath a common prefix
          return false;
        }
"""
CONTEXT = "      if (dirPath.startsWith(prefixPath)) {\n"

with open(path, encoding="utf-8") as f:
    src = f.read()
if MARK in src:
    if BLOCK in src:
        sys.exit("patch marker present but the pruning block is still there")
    print("setup-deps: s3rver listObjects already patched")
    sys.exit(0)
n = src.count(CONTEXT + BLOCK)
if n != 1:
    sys.exit("expected exactly one pruning block in listObjects, found %d: "
             "s3rver's code is not what this patch was written for" % n)
src = src.replace(CONTEXT + BLOCK, CONTEXT + "        " + MARK + "\n")
tmp = path + ".dmfs-tmp"
with open(tmp, "w", encoding="utf-8") as f:
    f.write(src)
import os
os.replace(tmp, path)
print("setup-deps: patched s3rver listObjects (nested common prefixes)")
EOF

# Verify the patch on the store itself, in a scratch directory: q/c/d/f.txt
# must show up as CommonPrefix q/ at the root with delimiter "/".
scratch=$(mktemp -d "${TMPDIR:-/tmp}/dmfs-s3rver-check.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
node - "$S3RVER_PKG" "$scratch" <<'EOF' || die "s3rver listObjects check failed"
const [pkg, dir] = process.argv.slice(2);
const FilesystemStore = require(pkg + '/lib/stores/filesystem');
const S3Object = require(pkg + '/lib/models/object');
(async () => {
  const store = new FilesystemStore(dir);
  await store.putBucket('b');
  for (const key of ['q/c/d/f.txt', 'top.txt', 'a/x.txt'])
    await store.putObject(new S3Object('b', key, Buffer.from('x'), {}));
  const root = await store.listObjects('b', { delimiter: '/' });
  const want = JSON.stringify(['a/', 'q/']);
  const got = JSON.stringify(root.commonPrefixes);
  if (got !== want)
    throw new Error(`root listing: CommonPrefixes ${got}, want ${want}`);
  const keys = JSON.stringify(root.objects.map(o => o.key));
  if (keys !== JSON.stringify(['top.txt']))
    throw new Error(`root listing: keys ${keys}, want ["top.txt"]`);
  const q = await store.listObjects('b', { delimiter: '/', prefix: 'q/' });
  if (JSON.stringify(q.commonPrefixes) !== JSON.stringify(['q/c/']))
    throw new Error(`q/ listing: CommonPrefixes ${JSON.stringify(q.commonPrefixes)}`);
  const all = await store.listObjects('b', {});
  if (all.objects.length !== 3)
    throw new Error(`flat listing: ${all.objects.length} keys, want 3`);
  console.log('setup-deps: s3rver check passed: q/c/d/f.txt lists as CommonPrefix q/');
})().catch(e => { console.error('setup-deps: ' + e.message); process.exit(1); });
EOF

say "done"
