#!/usr/bin/env python3
"""randread.py A B COUNT - read COUNT random (offset, length) ranges from
files A and B and fail if any differ.  Lengths from 1 byte to 3 MiB, so
reads cross block boundaries; offsets include the last bytes of the file."""
import os
import random
import sys

a, b, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = os.path.getsize(b)
rnd = random.Random(7)
with open(a, "rb") as fa, open(b, "rb") as fb:
    for i in range(count):
        n = rnd.choice([1, 17, 4096, 65536, 1 << 20, rnd.randrange(1, 3 << 20)])
        off = rnd.choice([0, max(0, size - n), rnd.randrange(0, max(1, size))])
        fa.seek(off)
        fb.seek(off)
        da, db = fa.read(n), fb.read(n)
        if da != db:
            print(f"mismatch at offset {off} length {n}: got {len(da)} bytes")
            sys.exit(1)
print(f"{count} random reads equal")
