#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Debian's prometheus scrapes a client (the workload, monitor on) and a
ufo-server (--monitor); the values that arrive through Prometheus' query
API must be the ones the programs report.

Usage: test_prometheus.py UFO_SERVER MON_WORKLOAD [PROMETHEUS]"""
import json
import os
import shutil
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mon_util as mu  # noqa: E402

SCRAPE_WAIT_S = 60


def query(prom, expr):
    url = prom + '/api/v1/query?' + urllib.parse.urlencode({'query': expr})
    try:
        r = json.loads(mu.http_get(url))
    except OSError:
        return None
    if r.get('status') != 'success':
        return None
    return r['data']['result']


def wait_value(prom, expr, want, what):
    """Polls until expr has exactly one series whose value is want (or
    satisfies want when it is a function)."""
    end = time.monotonic() + SCRAPE_WAIT_S
    last = None
    while time.monotonic() < end:
        res = query(prom, expr)
        if res and len(res) == 1:
            last = float(res[0]['value'][1])
            if (want(last) if callable(want) else last == want):
                print('ok: %s = %g (%s)' % (expr, last, what))
                return
        time.sleep(0.5)
    raise AssertionError('%s: %s never became %s (last %s)' % (what, expr, want, last))


def main():
    server_bin, workload_bin = sys.argv[1], sys.argv[2]
    prom_bin = sys.argv[3] if len(sys.argv) > 3 else shutil.which('prometheus')
    if not prom_bin or not os.access(prom_bin, os.X_OK):
        mu.skip('prometheus not installed')
    with mu.Children() as kids:
        server_url, server_mon, secret = mu.start_server(kids, server_bin)
        client, client_mon = mu.start_workload(
            kids, workload_bin, ['--mode', 'fixed', '--remote', server_url + '/promtest'],
            secret)
        done = mu.read_line(client, 'done ', timeout=120)
        assert done, 'the workload did not finish'
        figures = dict(kv.split('=') for kv in done.split())
        faults = int(figures['faults'])
        print('workload: %s; client %s, server %s' % (done, client_mon, server_mon))

        port = mu.free_port()
        cfg = os.path.join(kids.tmp, 'prometheus.yml')
        hostport = lambda u: u.split('//')[1].rstrip('/')
        with open(cfg, 'w') as f:
            f.write('global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n'
                    'scrape_configs:\n'
                    '  - job_name: ufo-client\n    static_configs:\n'
                    '      - targets: ["%s"]\n'
                    '  - job_name: ufo-server\n    static_configs:\n'
                    '      - targets: ["%s"]\n' % (hostport(client_mon), hostport(server_mon)))
        kids.start([prom_bin, '--config.file', cfg,
                    '--storage.tsdb.path', os.path.join(kids.tmp, 'tsdb'),
                    '--web.listen-address', '127.0.0.1:%d' % port,
                    '--log.level', 'warn'],
                   stdout=open(os.path.join(kids.tmp, 'prom.log'), 'w'),
                   stderr=open(os.path.join(kids.tmp, 'prom.err'), 'w'))
        prom = 'http://127.0.0.1:%d' % port
        try:
            wait_value(prom, 'up{job="ufo-client"}', 1, 'client scraped')
            wait_value(prom, 'up{job="ufo-server"}', 1, 'server scraped')
            wait_value(prom, 'ufo_faults_total', faults, 'client faults')
            wait_value(prom, 'ufo_write_faults_total', int(figures['wp_faults']),
                       'client write faults')
            # 512 chunks of the local object, touched once each.
            wait_value(prom, 'ufo_object_faults_total{kind="local"}', 512, 'local object')
            wait_value(prom, 'ufo_object_size_bytes{kind="remote"}', 4 << 20, 'remote size')
            wait_value(prom, 'ufo_remote_up', 1, 'remote connection state')
            wait_value(prom, 'ufo_budget_high_watermark_bytes', 8 << 20, 'budget')
            wait_value(prom, 'ufo_fault_latency_seconds_count',
                       lambda v: v >= faults, 'latency histogram')
            wait_value(prom, 'histogram_quantile(0.5, ufo_fault_latency_seconds_bucket)',
                       lambda v: 0 < v < 10, 'latency median in seconds')
            wait_value(prom, 'ufo_server_objects', 1, 'server objects')
            wait_value(prom, 'ufo_server_requests_total{op="create"}', 1, 'server creates')
            wait_value(prom, 'ufo_server_requests_total{op="write"}', lambda v: v >= 64,
                       'server writes (4 MiB in 64 KiB chunks)')
            wait_value(prom, 'ufo_server_written_bytes_total', 4 << 20, 'server bytes written')
            # Every remote chunk is read twice: faulted in before its first write,
            # and again after ufo_reset.
            wait_value(prom, 'ufo_server_read_bytes_total', 8 << 20, 'server bytes read')
            wait_value(prom, 'ufo_server_connections', lambda v: v >= 1, 'server connections')
            wait_value(prom, 'ufo_server_fdatasyncs_total', lambda v: v >= 1, 'server fdatasyncs')
        except AssertionError:
            for log in ('prom.log', 'prom.err'):
                p = os.path.join(kids.tmp, log)
                if os.path.exists(p):
                    sys.stderr.write(open(p).read()[-3000:])
            raise
        client.stdin.close()
        assert client.wait(timeout=30) == 0, 'the workload failed at exit'
    print('prometheus received the ufo metrics')


if __name__ == '__main__':
    main()
