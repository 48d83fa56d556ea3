#!/usr/bin/env python3
"""randread.py LISTFILE THREADS - read every file named in LISTFILE (one
path a line) in a shuffled order with THREADS reader threads, as a
DataLoader would; print the seconds taken and the bytes read."""
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor

paths = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip()]
threads = int(sys.argv[2])
random.Random(1).shuffle(paths)


def read(p):
    n = 0
    with open(p, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return n
            n += len(b)


t0 = time.monotonic()
with ThreadPoolExecutor(threads) as ex:
    total = sum(ex.map(read, paths))
print(f"{time.monotonic() - t0:.3f} {total}")
