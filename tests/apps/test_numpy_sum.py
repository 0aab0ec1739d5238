#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Python binding (python/ufo.py): a remote object four times larger
than the budget, filled and summed through a numpy array over its memory.

Run by t_apps_run, which starts a ufo-server and exports UFO_SERVERS and
UFO_SECRET_FILE; UFO_LIBRARY names the libufo.so under test.  Checks:
  * the array is the object's memory (same address, no copy, owns nothing);
  * numpy's sum after a reset (every chunk fetched again from the server,
    under the budget) equals the closed form, and sampled slices hold
    exactly their values (a sum cannot see chunks swapped);
  * the object did not fit: evictions happened, at least the object's size
    was fetched, and what stays resident is within the budget;
  * a read-only mapping gives a read-only array, and close() refuses while
    an array is alive.
Exits 77 when numpy is missing or userfaultfd is refused."""
import errno
import os
import sys

SIZE = 64 << 20          # bytes of the object
BUDGET = 16 << 20        # the context's high watermark
CHUNK = 1 << 20
MUL = 0x9E3779B97F4A7C15  # word i holds i * MUL mod 2^64
MASK = (1 << 64) - 1

try:
    import numpy as np
except ImportError:
    print("skip: numpy is not installed (apt-get install python3-numpy)")
    sys.exit(77)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import ufo  # noqa: E402


def expected_sum(n):
    return (MUL * (n * (n - 1) // 2)) & MASK


def fill(a):
    """Word i = i * MUL, a chunk at a time (no object-sized temporary)."""
    step = CHUNK // 8
    for i in range(0, a.size, step):
        a[i:i + step] = np.arange(i, min(i + step, a.size), dtype=np.uint64) * np.uint64(MUL)


def check_samples(a):
    for start in (0, 12345, a.size // 2 + 7, a.size - 1000):
        want = np.arange(start, start + 1000, dtype=np.uint64) * np.uint64(MUL)
        if not np.array_equal(a[start:start + 1000], want):
            raise AssertionError("words %d.. are not their pattern" % start)


def main():
    server = os.environ["UFO_SERVERS"].split(",")[0]
    url = "ufo://%s/numpy-sum" % server
    try:
        ctx = ufo.Context(budget=BUDGET)
    except OSError as e:
        if e.errno in (errno.EPERM, errno.EACCES, errno.ENOSYS):
            print("skip: userfaultfd refused: %s" % e)
            sys.exit(77)
        raise
    with ctx:
        with ctx.open_remote(url, create_size=SIZE, chunk_size=CHUNK) as obj:
            a = obj.array(np.uint64)
            assert a.size == SIZE // 8
            assert a.ctypes.data == obj.address and not a.flags.owndata
            fill(a)
            obj.sync()
            obj.reset()        # every chunk comes back from the server
            before = obj.stats()
            total = int(a.sum(dtype=np.uint64))
            after = obj.stats()
            check_samples(a)
            try:
                obj.close()
                raise AssertionError("close() with a live array did not refuse")
            except BufferError:
                pass
            del a
        fetched = after["bytes_loaded"] - before["bytes_loaded"]
        print("sum %#x (closed form %#x); fetched %d MiB for a %d MiB object "
              "through a %d MiB budget; %d faults, %d prefetches, %d "
              "evictions, resident %d MiB" %
              (total, expected_sum(SIZE // 8), fetched >> 20, SIZE >> 20,
               BUDGET >> 20, after["faults"], after["prefetches"],
               after["evictions"], after["resident_bytes"] >> 20))
        assert total == expected_sum(SIZE // 8), "wrong sum"
        assert fetched >= SIZE, "the sum did not read the whole object back"
        assert after["evictions"] > before["evictions"], "nothing was evicted"
        assert after["resident_bytes"] <= BUDGET, "resident over the budget"

        with ctx.open_remote(url, read_only=True) as ro:
            b = ro.array(np.uint64)
            assert not b.flags.writeable
            assert int(b[: 1 << 16].sum(dtype=np.uint64)) == expected_sum(1 << 16)
            del b
    print("ok")


if __name__ == "__main__":
    main()
