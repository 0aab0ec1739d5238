#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Debian's headless chromium loads the dashboards of a client under load
and of a ufo-server.  The client's page must plot data points in every
chart and list both objects and the server; a screenshot of it is kept
as an artifact (ARTIFACT_DIR/dashboard-client.png, and -server.png).

Usage: test_browser.py UFO_SERVER MON_WORKLOAD ARTIFACT_DIR [CHROMIUM]"""
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mon_util as mu  # noqa: E402

BROWSER_TIMEOUT_S = 90
VIRTUAL_TIME_MS = 6000  # about six one-second updates


def chromium(kids, binary, url, *extra):
    profile = os.path.join(kids.tmp, 'profile-%d' % time.monotonic_ns())
    argv = [binary, '--headless', '--no-sandbox', '--disable-gpu',
            '--no-first-run', '--disable-background-networking',
            '--disable-component-update', '--disable-sync',
            '--disable-dev-shm-usage', '--hide-scrollbars',
            '--user-data-dir=' + profile,
            '--virtual-time-budget=%d' % VIRTUAL_TIME_MS] + list(extra) + [url]
    r = subprocess.run(argv, capture_output=True, text=True,
                       timeout=BROWSER_TIMEOUT_S, start_new_session=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr[-3000:])
        raise AssertionError('chromium exited %d' % r.returncode)
    return r.stdout


def summary(dom):
    m = re.search(r'<pre id="summary"[^>]*>(.*?)</pre>', dom, re.S)
    assert m and m.group(1).strip(), 'the page has no summary: scripts did not run'
    return json.loads(html.unescape(m.group(1)))


def check_client(kids, binary, url, artifacts):
    dom = chromium(kids, binary, url, '--dump-dom')
    s = summary(dom)
    print('client page summary:', json.dumps(s))
    assert s['kind'] == 'client'
    assert s['plots'], 'Chart.js did not load from the monitor'
    assert s['samples'] >= 3, 'fewer than 3 updates in %d ms' % VIRTUAL_TIME_MS
    for chart in ('faults', 'throughput', 'resident', 'latency'):
        assert s['points'].get(chart, 0) >= 2, 'chart %s has no data points' % chart
        m = re.search(r'id="chart-%s"[^>]*data-points="(\d+)"' % chart, dom)
        assert m and int(m.group(1)) >= 2, 'canvas %s: data-points' % chart
    kinds = sorted(o['kind'] for o in s['objects'])
    assert kinds == ['local', 'remote'], 'objects listed: %s' % s['objects']
    assert s['faults'] > 0
    assert len(s['servers']) == 1 and s['servers'][0]['state'] == 'up', s['servers']
    assert re.search(r'<tr data-object="1">', dom), 'the objects table lacks object 1'
    shot = os.path.join(artifacts, 'dashboard-client.png')
    chromium(kids, binary, url, '--screenshot=' + shot, '--window-size=1400,1300')
    assert os.path.getsize(shot) > 20000, 'the screenshot is (nearly) empty'
    print('screenshot:', shot)


def check_server(kids, binary, url, artifacts):
    dom = chromium(kids, binary, url, '--dump-dom')
    s = summary(dom)
    print('server page summary:', json.dumps(s))
    assert s['kind'] == 'server' and s['objects'] == 1 and s['requests'] > 0
    assert all(n >= 2 for n in s['points'].values()), s['points']
    shot = os.path.join(artifacts, 'dashboard-server.png')
    chromium(kids, binary, url, '--screenshot=' + shot, '--window-size=1400,1000')
    assert os.path.getsize(shot) > 10000


def main():
    server_bin, workload_bin, artifacts = sys.argv[1:4]
    binary = sys.argv[4] if len(sys.argv) > 4 else (
        shutil.which('chromium') or shutil.which('chromium-browser'))
    if not binary:
        mu.skip('chromium not installed')
    os.makedirs(artifacts, exist_ok=True)
    with mu.Children() as kids:
        server_url, server_mon, secret = mu.start_server(kids, server_bin)
        client, client_mon = mu.start_workload(
            kids, workload_bin,
            ['--mode', 'loop', '--seconds', '60', '--remote', server_url + '/browser'],
            secret)
        print('client dashboard %s, server dashboard %s' % (client_mon, server_mon))
        time.sleep(1)  # some history before the page opens
        check_client(kids, binary, client_mon, artifacts)
        check_server(kids, binary, server_mon, artifacts)
        assert client.poll() is None, 'the workload died under the dashboard'
    print('dashboards plot live data')


if __name__ == '__main__':
    main()
