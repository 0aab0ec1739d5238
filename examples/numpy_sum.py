#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""numpy over a remote object larger than the memory budget.

    export UFO_SECRET_FILE=~/ufo-demo/secret
    UFO_LIBRARY=build/libufo/libufo.so PYTHONPATH=python \\
        python3 examples/numpy_sum.py ufo://127.0.0.1:7070/numbers --size 1G --budget 64M

Creates the object when missing and fills it (word i = i), then sums it
with numpy through an array that *is* the object's memory (python/ufo.py):
chunks are fetched from the server as numpy reads them and evicted behind
it, so resident memory stays under the budget.  Prints the sum beside its
closed form, and the library's counters.
"""
import argparse
import time

import numpy as np

import ufo


def fill(a, step=1 << 17):
    for i in range(0, a.size, step):
        a[i:i + step] = np.arange(i, min(i + step, a.size), dtype=np.uint64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", help="ufo://HOST:PORT/NAME, or ufo:///NAME for $UFO_SERVERS")
    ap.add_argument("--size", default="256M", help="bytes, when creating (256M)")
    ap.add_argument("--budget", default="32M", help="high watermark (32M)")
    ap.add_argument("--fill", action="store_true", help="(re)write the object first")
    args = ap.parse_args()

    with ufo.Context(budget=args.budget) as ctx:
        with ctx.open_remote(args.url, create_size=args.size) as obj:
            a = obj.array(np.uint64)
            if args.fill or not a[-1]:
                t = time.monotonic()
                fill(a)
                obj.sync()
                obj.reset()
                print("filled %d MiB in %.2f s" % (obj.size >> 20, time.monotonic() - t))
            t = time.monotonic()
            total = int(a.sum(dtype=np.uint64))
            secs = time.monotonic() - t
            n = a.size
            s = obj.stats()
            del a
        print("sum of %d words: %d (closed form %d) in %.2f s, %.0f MiB/s" %
              (n, total, n * (n - 1) // 2 % (1 << 64), secs, (n * 8 >> 20) / secs))
        print("faults %d, prefetched %d, fetched %d MiB, evictions %d, resident %d MiB "
              "(budget %d MiB)" % (s["faults"], s["prefetches"], s["bytes_loaded"] >> 20,
                                   s["evictions"], s["resident_bytes"] >> 20,
                                   s["high_watermark"] >> 20))
        return 0 if total == n * (n - 1) // 2 % (1 << 64) else 1


if __name__ == "__main__":
    raise SystemExit(main())
