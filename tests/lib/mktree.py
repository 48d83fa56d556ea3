#!/usr/bin/env python3
"""mktree.py DIR NFILES BIG_MB - a test tree: NFILES small files of random
sizes in nested directories (with awkward names: spaces, '+', '%', unicode,
an s3fs-style deep path), plus big.bin of BIG_MB MiB.  Deterministic."""
import hashlib
import os
import random
import sys

root, nfiles, big_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(42)
odd = ["with space.txt", "plus+sign.bin", "unicode-\u00e9t\u00e9.txt",
       "100%.txt", "tilde~x", "semi;colon", "a=b&c.txt"]
os.makedirs(root, exist_ok=True)
made = 0
for d1 in range(10):
    for d2 in range(10):
        d = os.path.join(root, f"dir{d1:02d}", f"sub {d2}")
        os.makedirs(d, exist_ok=True)
        per = (nfiles + 99) // 100
        for i in range(per):
            if made >= nfiles:
                break
            name = odd[i] if (d1 == 0 and i < len(odd)) else f"f{i:03d}.dat"
            size = rnd.choice([0, 1, 100, 4095, 4096, 4097, 65536,
                               rnd.randrange(0, 300000)])
            with open(os.path.join(d, name), "wb") as f:
                f.write(rnd.randbytes(size))
            made += 1
deep = os.path.join(root, "q", "c", "d")
os.makedirs(deep, exist_ok=True)
with open(os.path.join(deep, "f.txt"), "w") as f:
    f.write("deep\n")
with open(os.path.join(root, "big.bin"), "wb") as f:
    seed = hashlib.sha256(b"big").digest()
    for i in range(big_mb):
        # 1 MiB that differs from every other MiB (a unique 32-byte head).
        head = hashlib.sha256(seed + i.to_bytes(4, "big")).digest()
        f.write(head + rnd.randbytes(1024 * 1024 - 32))
