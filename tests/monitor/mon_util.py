# SPDX-License-Identifier: MIT
"""Shared by the monitor's Python tests: child processes that die with the
test, free ports, a ufo-server with its monitor, the workload client.
Every wait is bounded; a missing tool or userfaultfd means exit 77."""
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SKIP = 77


def skip(why):
    print('skip: ' + why)
    sys.exit(SKIP)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class Children:
    """Starts processes and kills them all on exit, whatever happens."""

    def __init__(self):
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix='ufo-mon-test-')

    def start(self, argv, **kw):
        kw.setdefault('stdout', subprocess.PIPE)
        kw.setdefault('stdin', subprocess.PIPE)
        p = subprocess.Popen(argv, text=True, start_new_session=True, **kw)
        self.procs.append(p)
        if kw['stdout'] == subprocess.PIPE:
            p.lines = queue.Queue()
            threading.Thread(target=self._pump, args=(p,), daemon=True).start()
        return p

    @staticmethod
    def _pump(p):
        for line in p.stdout:
            p.lines.put(line)
        p.lines.put(None)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_line(p, prefix, timeout=30):
    """The next stdout line of p starting with prefix, or None (p exited,
    or timeout).  Lines are read by a thread per process (Children.start),
    so a line already buffered is never missed by waiting on the fd."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return None
        try:
            line = p.lines.get(timeout=left)
        except queue.Empty:
            return None
        if line is None:
            return None
        if line.startswith(prefix):
            return line[len(prefix):].strip()


def start_server(kids, server_bin):
    """ufo-server with --monitor: (its ufo:// URL, its monitor URL, secret)."""
    data = os.path.join(kids.tmp, 'data')
    secret = os.path.join(kids.tmp, 'secret')
    with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
        f.write('monitor-test-secret-0123456789\n')
    p = kids.start([server_bin, '--listen', '127.0.0.1:0', '--data', data,
                    '--secret-file', secret, '--monitor', '127.0.0.1:0',
                    '--log-level', 'warn'])
    listen = read_line(p, 'listening on ')
    mon = read_line(p, 'monitor on ')
    if not listen or not mon:
        raise RuntimeError('ufo-server did not start with its monitor')
    return 'ufo://' + listen, mon, secret


def start_workload(kids, workload_bin, args, secret=None):
    """The workload client: (process, monitor URL).  Skips without uffd."""
    env = dict(os.environ, UFO_MONITOR='127.0.0.1:0', UFO_LOG_LEVEL='warn')
    if secret:
        env['UFO_SECRET_FILE'] = secret
    p = kids.start([workload_bin] + args, env=env)
    mon = read_line(p, 'monitor ')
    if mon is None:
        if p.wait(timeout=10) == SKIP:
            skip('userfaultfd refused')
        raise RuntimeError('the workload did not start (exit %s)' % p.returncode)
    return p, mon
