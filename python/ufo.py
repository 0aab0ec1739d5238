# SPDX-License-Identifier: MIT
"""libufo from Python: remote objects as numpy arrays, without copying.

    import numpy as np, ufo
    with ufo.Context(budget="64M") as ctx:
        with ctx.open_remote("ufo://10.0.0.1:7070/points", read_only=True) as obj:
            a = obj.array(np.float64)      # the object's memory, not a copy
            print(a.sum())                 # faults fetch chunks as numpy reads

ctypes only (no build step, nothing beyond Debian's python3 and
python3-numpy).  The library is $UFO_LIBRARY when set, else what
ctypes.util.find_library("ufo") finds (after `meson install` and ldconfig),
else libufo.so.0; ufo.load(path) picks another before first use.

Faults are served by the library's own threads, so numpy (or any code)
reading or writing the array needs nothing special: a touch of a missing
chunk blocks that thread until the chunk is installed.  A fetch that fails
for good raises SIGBUS in the touching thread, which kills the interpreter
like a bad mmap would (docs/remote.md, Failures).

Lifetime: an array keeps its object alive.  close() (or leaving the `with`
block) refuses, with BufferError, while arrays of the object exist, as
mmap.close() does; a Context refuses to close while objects are open.
Calls return normally or raise OSError with the library's errno.
"""
import ctypes
import ctypes.util
import gc
import os
import sys
import weakref

__all__ = ["Context", "RemoteObject", "load", "parse_size", "UFO_READ_ONLY"]

UFO_READ_ONLY = 1 << 0
UFO_REMOTE_CREATE = 1 << 8
# The C structs below are mirrored from ufo.h.  Each lives in a buffer this
# much larger than the mirror, so a library whose struct grew at the end
# cannot write past it; the fields used here must keep their place.
_STRUCT_ROOM = 4096


class _Config(ctypes.Structure):
    _fields_ = [("high_watermark", ctypes.c_size_t),
                ("low_watermark", ctypes.c_size_t),
                ("threads", ctypes.c_uint),
                ("dirty_mode", ctypes.c_int),
                ("policy", ctypes.c_int),
                ("retries", ctypes.c_uint),
                ("retry_delay_ms", ctypes.c_uint),
                ("log", ctypes.c_void_p),
                ("log_user", ctypes.c_void_p),
                ("log_level", ctypes.c_int),
                ("monitor", ctypes.c_char_p)]


class _RemoteOpts(ctypes.Structure):
    _fields_ = [("secret_file", ctypes.c_char_p),
                ("timeout_ms", ctypes.c_uint),
                ("connections", ctypes.c_uint),
                ("flags", ctypes.c_uint),
                ("create_size", ctypes.c_uint64),
                ("chunk_size", ctypes.c_size_t),
                ("replicas", ctypes.c_uint),
                ("write_quorum", ctypes.c_uint),
                ("group_size", ctypes.c_uint64)]


_STAT_FIELDS = ["faults", "wp_faults", "populate_calls", "populate_ns",
                "populate_errors", "bytes_loaded", "prefetches", "evictions",
                "writebacks", "writeback_bytes", "writeback_errors", "sigbus",
                "resident_bytes", "dirty_bytes", "high_watermark",
                "low_watermark"]
_STAT_TAIL = ["bytes_moved", "bytes_copied", "pages_recycled", "bytes_holes",
              "ios_in_flight", "ios_in_flight_max", "handler_threads",
              "writeback_chunk_bytes", "readahead_chunks", "readahead_used",
              "readahead_late", "readahead_accuracy_pm",
              "readahead_coverage_pm"]
_HIST_BUCKETS = 24


class _Stats(ctypes.Structure):
    _fields_ = ([(f, ctypes.c_uint64) for f in _STAT_FIELDS] +
                [("fault_latency_us", ctypes.c_uint64 * _HIST_BUCKETS)] +
                [(f, ctypes.c_uint64) for f in _STAT_TAIL])


def _room(struct_type):
    """A zeroed struct_type at the start of a _STRUCT_ROOM-byte buffer."""
    buf = ctypes.create_string_buffer(max(_STRUCT_ROOM, ctypes.sizeof(struct_type)))
    s = struct_type.from_buffer(buf)
    s._room = buf
    return s


_lib = None


def load(path=None):
    """Loads libufo (see the module's doc) and declares its calls; returns
    the ctypes library.  Later calls return the one already loaded."""
    global _lib
    if _lib is not None:
        return _lib
    path = (path or os.environ.get("UFO_LIBRARY") or
            ctypes.util.find_library("ufo") or "libufo.so.0")
    lib = ctypes.CDLL(path)
    p, i, u64, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64, ctypes.c_size_t
    for name, res, args in [
            ("ufo_parse_size", i, [ctypes.c_char_p, ctypes.POINTER(u64)]),
            ("ufo_config_init", None, [p]),
            ("ufo_ctx_create", i, [p, ctypes.POINTER(p)]),
            ("ufo_ctx_destroy", i, [p]),
            ("ufo_ctx_config", None, [p, p]),
            ("ufo_ctx_stats", i, [p, p]),
            ("ufo_remote_opts_init", None, [p]),
            ("ufo_remote_open", i, [p, ctypes.c_char_p, p, ctypes.POINTER(p)]),
            ("ufo_free", i, [p]),
            ("ufo_body", p, [p]),
            ("ufo_elem_count", u64, [p]),
            ("ufo_chunk_size", sz, [p]),
            ("ufo_sync", i, [p]),
            ("ufo_reset", i, [p]),
            ("ufo_refresh", i, [p]),
            ("ufo_advise", i, [p, u64, u64, i]),
            ("ufo_obj_stats", i, [p, p])]:
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    _lib = lib
    return lib


def _check(rc, what):
    if rc < 0:
        raise OSError(-rc, "%s: %s" % (what, os.strerror(-rc)))
    return rc


def parse_size(v):
    """A byte count: an int, or a string as UFO_* variables take it ("64M")."""
    if isinstance(v, int):
        return v
    out = ctypes.c_uint64()
    _check(load().ufo_parse_size(v.encode(), ctypes.byref(out)), "size %r" % v)
    return out.value


def _stats_dict(s):
    d = {f: getattr(s, f) for f in _STAT_FIELDS + _STAT_TAIL}
    d["fault_latency_us"] = list(s.fault_latency_us)
    return d


class Context:
    """A ufo context: the userfaultfd, its threads and the memory budget.

    budget: the high watermark in bytes (int, or "64M"); None keeps the
    library's default (or $UFO_HIGH_WATERMARK).  threads: fault-handling
    threads (None: the default)."""

    def __init__(self, budget=None, threads=None):
        lib = load()
        cfg = _room(_Config)
        lib.ufo_config_init(ctypes.addressof(cfg))
        if budget is not None:
            cfg.high_watermark = parse_size(budget)
        if threads is not None:
            cfg.threads = threads
        handle = ctypes.c_void_p()
        _check(lib.ufo_ctx_create(ctypes.addressof(cfg), ctypes.byref(handle)),
               "ufo_ctx_create")
        self._handle = handle.value
        self._objects = weakref.WeakSet()
        # The mirror must match the library: the budget in force comes back
        # where it was put (unless $UFO_HIGH_WATERMARK overrode it).
        got = _room(_Config)
        lib.ufo_ctx_config(self._handle, ctypes.addressof(got))
        if (budget is not None and "UFO_HIGH_WATERMARK" not in os.environ and
                got.high_watermark != cfg.high_watermark):
            self.close()
            raise RuntimeError("struct ufo_config does not match this libufo")

    def open_remote(self, url, create_size=None, chunk_size=None,
                    read_only=False, secret_file=None, timeout_ms=None,
                    replicas=None):
        """Maps a ufo-server object (ufo_remote_open): "ufo://host:port/name",
        a server list "ufo://h1:p,h2:p/name", or "ufo:///name" for
        $UFO_SERVERS.  create_size (bytes) creates it when missing."""
        return RemoteObject(self, url, create_size, chunk_size, read_only,
                            secret_file, timeout_ms, replicas)

    def stats(self):
        """ufo_ctx_stats as a dict: faults, bytes_loaded, resident_bytes..."""
        s = _room(_Stats)
        _check(load().ufo_ctx_stats(self._live(), ctypes.addressof(s)),
               "ufo_ctx_stats")
        return _stats_dict(s)

    def _live(self):
        if not self._handle:
            raise ValueError("the context is closed")
        return self._handle

    def close(self):
        """Destroys the context (ufo_ctx_destroy); objects must be closed
        first.  Raises OSError with the first writeback error."""
        if not self._handle:
            return
        if len(self._objects):
            raise BufferError("%d object(s) of this context are still open"
                              % len(self._objects))
        h, self._handle = self._handle, None
        _check(load().ufo_ctx_destroy(h), "ufo_ctx_destroy")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None) and not len(self._objects):
            load().ufo_ctx_destroy(self._handle)


class RemoteObject:
    """A mapped server object: bytes of memory filled on demand.

    array(dtype) views them as a numpy array without copying; sync()
    publishes writes, reset() drops everything (next touches fetch again),
    refresh() drops clean chunks to see other clients' synced writes."""

    def __init__(self, ctx, url, create_size, chunk_size, read_only,
                 secret_file, timeout_ms, replicas):
        lib = load()
        opts = _room(_RemoteOpts)
        lib.ufo_remote_opts_init(ctypes.addressof(opts))
        if secret_file is not None:
            opts.secret_file = os.fsencode(secret_file)
        if timeout_ms is not None:
            opts.timeout_ms = timeout_ms
        if chunk_size is not None:
            opts.chunk_size = parse_size(chunk_size)
        if replicas is not None:
            opts.replicas = replicas
        if read_only:
            opts.flags |= UFO_READ_ONLY
        if create_size is not None:
            opts.flags |= UFO_REMOTE_CREATE
            opts.create_size = parse_size(create_size)
        handle = ctypes.c_void_p()
        _check(lib.ufo_remote_open(ctx._live(), url.encode(),
                                   ctypes.addressof(opts), ctypes.byref(handle)),
               "ufo_remote_open %s" % url)
        self._handle = handle.value
        self._ctx = ctx            # the context outlives its objects
        self.url = url
        self.read_only = bool(read_only)
        self.size = lib.ufo_elem_count(self._handle)
        self.address = lib.ufo_body(self._handle)
        self._exports = 0          # buffers alive (buffer(), array())
        ctx._objects.add(self)

    @property
    def chunk_size(self):
        return load().ufo_chunk_size(self._live())

    def _live(self):
        if not self._handle:
            raise ValueError("the object is closed")
        return self._handle

    def buffer(self):
        """The object's memory as a ctypes byte array at its address (no
        copy).  It keeps the object alive; numpy.frombuffer takes it."""
        self._live()
        buf = (ctypes.c_ubyte * self.size).from_address(self.address)
        buf._ufo_object = self
        self._exports += 1
        weakref.finalize(buf, self._export_gone)
        return buf

    def _export_gone(self):
        self._exports -= 1

    def array(self, dtype="u1"):
        """The object's memory as a 1-d numpy array of dtype, without a
        copy: its data pointer is self.address.  Read-only objects give
        read-only arrays.  The size must be a multiple of the item size."""
        import numpy as np
        a = np.frombuffer(self.buffer(), dtype=dtype)
        if self.read_only:
            a.flags.writeable = False
        return a

    def sync(self):
        _check(load().ufo_sync(self._live()), "ufo_sync")

    def reset(self):
        _check(load().ufo_reset(self._live()), "ufo_reset")

    def refresh(self):
        _check(load().ufo_refresh(self._live()), "ufo_refresh")

    def stats(self):
        """ufo_obj_stats as a dict."""
        s = _room(_Stats)
        _check(load().ufo_obj_stats(self._live(), ctypes.addressof(s)),
               "ufo_obj_stats")
        return _stats_dict(s)

    def close(self):
        """Writes back what is dirty and unmaps (ufo_free).  Raises
        BufferError while arrays of the object exist."""
        if not self._handle:
            return
        if self._exports:
            gc.collect()    # arrays in unreachable cycles
        if self._exports:
            raise BufferError("arrays of %s still exist" % self.url)
        h, self._handle = self._handle, None
        self._ctx._objects.discard(self)
        _check(load().ufo_free(h), "ufo_free")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # Only unreachable objects get here, and an array of the object
        # keeps it reachable (buffer()), so no array can outlive the map.
        if getattr(self, "_handle", None):
            load().ufo_free(self._handle)
            self._handle = None
