#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The monitoring files of deploy/ against the metrics the code exports.

A ufo-server (--monitor) and the monitor tests' workload client (monitor
on, one remote object) run; their /metrics are scraped.  Then:
  * the Grafana dashboard is valid JSON with unique panel ids, and every
    metric name in its queries, and in deploy/prometheus/ufo-rules.yml,
    appears in those scrapes;
  * promtool parses every dashboard query (Grafana's variables filled in)
    and checks the rules file and prometheus.yml.  Debian's promtool is
    built without Kubernetes discovery, so if it rejects only that, the
    file is checked again without its kubernetes_sd jobs (and says so).
Exit 77 without promtool or userfaultfd.

Usage: check_monitoring.py SOURCE_ROOT UFO_SERVER MON_WORKLOAD"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

root, server_bin, workload_bin = sys.argv[1:4]
sys.path.insert(0, os.path.join(root, 'tests', 'monitor'))
import mon_util as mu  # noqa: E402

DASHBOARD = os.path.join(root, 'deploy', 'grafana', 'ufo-dashboard.json')
RULES = os.path.join(root, 'deploy', 'prometheus', 'ufo-rules.yml')
PROMCFG = os.path.join(root, 'deploy', 'prometheus', 'prometheus.yml')
# Grafana's variables, as a query would see them.
GRAFANA_VARS = {'$__rate_interval': '1m', '$__interval': '15s',
                '$server': '.*', '$app': '.*'}
# Series Prometheus makes itself, not the programs.
BUILTIN = {'up', 'scrape_duration_seconds', 'scrape_samples_scraped'}
METRIC = re.compile(r'\b(ufo_[a-z0-9_]+|up)\b')
failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg)


def series_names(text):
    return {line.split('{')[0].split(' ')[0] for line in text.splitlines()
            if line and not line.startswith('#')}


def scrape():
    with mu.Children() as kids:
        url, server_mon, secret = mu.start_server(kids, server_bin)
        client, client_mon = mu.start_workload(
            kids, workload_bin, ['--mode', 'fixed', '--remote', url + '/deploycheck'],
            secret)
        if not mu.read_line(client, 'done ', timeout=120):
            raise RuntimeError('the workload did not finish')
        server = mu.http_get(server_mon.rstrip('/') + '/metrics')
        app = mu.http_get(client_mon.rstrip('/') + '/metrics')
    return series_names(server) | series_names(app)


def dashboard_queries():
    with open(DASHBOARD) as f:
        dash = json.load(f)  # a parse error fails the test here
    ids = []
    exprs = []
    for p in dash.get('panels', []):
        ids.append(p.get('id'))
        for sub in p.get('panels', []):
            ids.append(sub.get('id'))
        for t in p.get('targets', []):
            exprs.append((p.get('title'), t['expr']))
    if len(ids) != len(set(ids)):
        fail('dashboard: panel ids are not unique')
    if not exprs:
        fail('dashboard: no queries')
    for v in dash['templating']['list']:
        q = v.get('definition')
        if q:
            exprs.append(('variable ' + v['name'], q))
    return exprs


def check_names(where, expr, exported):
    for name in METRIC.findall(expr):
        if name not in exported and name not in BUILTIN:
            fail('%s: %s is not exported by ufo-server or libufo (query: %s)'
                 % (where, name, expr))


def promtool(args, tmp):
    return subprocess.run(['promtool'] + args, cwd=tmp, capture_output=True,
                          text=True)


def check_promql(exprs, tmp):
    """promtool check rules on one recording rule per query."""
    rules = []
    for i, (title, e) in enumerate(exprs):
        if e.startswith('label_values('):
            continue  # Grafana syntax, not PromQL
        for k, v in GRAFANA_VARS.items():
            e = e.replace(k, v)
        if '$' in e:
            fail('%s: a Grafana variable this check does not know: %s' % (title, e))
        rules.append({'record': 'dashboard:query_%d' % i, 'expr': e})
    path = os.path.join(tmp, 'dashboard-rules.yml')
    with open(path, 'w') as f:
        yaml.safe_dump({'groups': [{'name': 'dashboard', 'rules': rules}]}, f)
    r = promtool(['check', 'rules', path], tmp)
    if r.returncode:
        fail('dashboard queries do not parse:\n' + r.stdout + r.stderr)
    else:
        print('ok: promtool parses the %d dashboard queries' % len(rules))


def check_prometheus_config(tmp):
    r = promtool(['check', 'rules', RULES], tmp)
    if r.returncode:
        fail('promtool check rules %s:\n%s%s' % (RULES, r.stdout, r.stderr))
    else:
        print('ok: promtool check rules ufo-rules.yml')
    shutil.copy(RULES, tmp)
    cfg = os.path.join(tmp, 'prometheus.yml')
    shutil.copy(PROMCFG, cfg)
    r = promtool(['check', 'config', cfg], tmp)
    if r.returncode and 'field kubernetes_sd_configs not found' in r.stdout + r.stderr:
        with open(PROMCFG) as f:
            c = yaml.safe_load(f)
        k8s = [j['job_name'] for j in c['scrape_configs'] if 'kubernetes_sd_configs' in j]
        c['scrape_configs'] = [j for j in c['scrape_configs']
                               if 'kubernetes_sd_configs' not in j]
        with open(cfg, 'w') as f:
            yaml.safe_dump(c, f)
        print('note: this promtool has no Kubernetes discovery; checking '
              'prometheus.yml without job(s) %s' % ', '.join(k8s))
        r = promtool(['check', 'config', cfg], tmp)
    if r.returncode:
        fail('promtool check config %s:\n%s%s' % (PROMCFG, r.stdout, r.stderr))
    else:
        print('ok: promtool check config prometheus.yml')


def main():
    if not shutil.which('promtool'):
        mu.skip('promtool not installed (apt-get install prometheus)')
    exprs = dashboard_queries()
    with open(RULES) as f:
        rules = yaml.safe_load(f)
    alert_exprs = [('alert ' + r['alert'], r['expr'])
                   for g in rules['groups'] for r in g['rules']]
    exported = scrape()
    print('scraped %d series names from ufo-server and a libufo client' % len(exported))
    for title, e in exprs + alert_exprs:
        check_names(title, e, exported)
    tmp = tempfile.mkdtemp(prefix='ufo-deploy-mon-')
    try:
        check_promql(exprs, tmp)
        check_prometheus_config(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print('%d problem(s)' % len(failures))
        sys.exit(1)
    print('ok: every metric in the dashboard and the alert rules is exported')


main()
