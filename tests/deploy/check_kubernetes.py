#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""YAML and the Kubernetes manifests, without a cluster.

  * yamllint --strict with the tree's .yamllint on every YAML file;
  * the manifests of deploy/kubernetes hang together: the kustomization
    lists every file; the headless Service (clusterIP None) selects the
    StatefulSet's pods and is its serviceName; volumes, claims and the
    Secret a pod uses exist; probes and the Prometheus annotations name
    the port of --monitor, which binds a non-loopback address; requests
    and limits are set; the pod runs as the image's non-root user
    (USER in the Containerfile);
  * ufo-server starts with the container's args (paths and ports swapped
    for scratch ones) and a secret copied the way the init container
    does, and warns about nothing.

Usage: check_kubernetes.py SOURCE_ROOT UFO_SERVER"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

root, server = sys.argv[1], sys.argv[2]
K8S = os.path.join(root, 'deploy', 'kubernetes')
failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg)


def yamllint():
    if not shutil.which('yamllint'):
        print('skip: yamllint not installed (apt-get install yamllint)')
        sys.exit(77)
    r = subprocess.run(['yamllint', '--strict', '-c', os.path.join(root, '.yamllint'),
                        '-f', 'parsable', '.'], cwd=root, capture_output=True, text=True)
    if r.returncode:
        fail('yamllint:\n' + r.stdout + r.stderr)
    files = subprocess.run(['yamllint', '--list-files', '-c', os.path.join(root, '.yamllint'), '.'], cwd=root,
                           capture_output=True, text=True).stdout.split()
    print('ok: yamllint --strict on the tree (%d files)' % len(files)
          if not r.returncode else 'yamllint failed')


def load():
    docs = {}
    for f in sorted(os.listdir(K8S)):
        if not f.endswith(('.yaml', '.yml')):
            continue
        with open(os.path.join(K8S, f)) as fh:
            for d in yaml.safe_load_all(fh):
                if not d:
                    continue
                for k in ('apiVersion', 'kind'):
                    if k not in d:
                        fail('%s: a document without %s' % (f, k))
                if d.get('kind') != 'Kustomization' and not d.get('metadata', {}).get('name'):
                    fail('%s: %s without metadata.name' % (f, d.get('kind')))
                docs.setdefault(d.get('kind'), []).append((f, d))
    return docs


def one(docs, kind):
    found = docs.get(kind, [])
    if len(found) != 1:
        fail('want one %s, found %d' % (kind, len(found)))
        return None
    return found[0][1]


def container_args(c):
    a = c.get('args', [])
    return dict(zip(a[::2], a[1::2])), a


def check_manifests(docs):
    kust = one(docs, 'Kustomization')
    files = {f for v in docs.values() for f, _ in v if f != 'kustomization.yaml'}
    if kust and set(kust.get('resources', [])) != files:
        fail('kustomization resources %s != manifest files %s'
             % (sorted(kust.get('resources', [])), sorted(files)))
    sts, svc, secret = one(docs, 'StatefulSet'), one(docs, 'Service'), one(docs, 'Secret')
    if not (sts and svc and secret):
        return None
    spec, pod = sts['spec'], sts['spec']['template']
    labels = pod['metadata'].get('labels', {})
    if svc['spec'].get('clusterIP') != 'None':
        fail('Service %s is not headless (clusterIP: None)' % svc['metadata']['name'])
    if spec.get('serviceName') != svc['metadata']['name']:
        fail('StatefulSet serviceName %s is not the Service %s'
             % (spec.get('serviceName'), svc['metadata']['name']))
    for what, sel in (('Service selector', svc['spec'].get('selector', {})),
                      ('StatefulSet selector', spec['selector'].get('matchLabels', {}))):
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            fail('%s %s does not match the pod labels %s' % (what, sel, labels))
    claims = {c['metadata']['name'] for c in spec.get('volumeClaimTemplates', [])}
    if not claims:
        fail('no volumeClaimTemplates: the data would not persist')
    vols = {v['name']: v for v in pod['spec'].get('volumes', [])}
    for v in vols.values():
        if 'secret' in v:
            if v['secret'].get('secretName') != secret['metadata']['name']:
                fail('volume %s uses Secret %s, which is not defined'
                     % (v['name'], v['secret'].get('secretName')))
            mode = v['secret'].get('defaultMode')
            if mode is None or mode & 0o077 & ~0o040:
                fail('secret volume %s has mode %s: others could read it'
                     % (v['name'], oct(mode) if mode else 'default 0644'))
    sctx = pod['spec'].get('securityContext', {})
    if not sctx.get('runAsNonRoot'):
        fail('the pod does not set runAsNonRoot')
    cf = open(os.path.join(root, 'deploy', 'container', 'Containerfile')).read()
    user = re.findall(r'^USER\s+(\d+)', cf, re.M)
    if user and str(sctx.get('runAsUser')) != user[-1]:
        fail('runAsUser %s is not the image USER %s' % (sctx.get('runAsUser'), user[-1]))
    server_c = None
    for c in pod['spec'].get('initContainers', []) + pod['spec']['containers']:
        for m in c.get('volumeMounts', []):
            if m['name'] not in vols and m['name'] not in claims:
                fail('container %s mounts %s, which is neither a volume nor a claim'
                     % (c['name'], m['name']))
        if '--secret-file' in c.get('args', []):
            server_c = c
    if not server_c:
        fail('no container runs ufo-server with --secret-file')
        return None
    args, _ = container_args(server_c)
    ports = {p['name']: p['containerPort'] for p in server_c.get('ports', [])}
    mon = args.get('--monitor', '')
    if not mon or mon.startswith(('127.', 'localhost', '[::1]')) or mon.isdigit():
        fail('--monitor %r binds loopback (or nothing): the kubelet cannot probe it' % mon)
    mon_port = int(mon.rsplit(':', 1)[-1]) if ':' in mon else None
    for probe in ('readinessProbe', 'livenessProbe'):
        p = server_c.get(probe)
        if not p or 'httpGet' not in p:
            fail('no HTTP %s' % probe)
            continue
        port = p['httpGet']['port']
        if ports.get(port, port) != mon_port:
            fail('%s probes port %s, the monitor is on %s' % (probe, port, mon_port))
    ann = pod['metadata'].get('annotations', {})
    if ann.get('prometheus.io/scrape') != 'true' or ann.get('prometheus.io/port') != str(mon_port):
        fail('Prometheus annotations %s do not point at the monitor port %s' % (ann, mon_port))
    res = server_c.get('resources', {})
    for k in ('requests', 'limits'):
        if not res.get(k, {}).get('memory') or not res.get(k, {}).get('cpu'):
            fail('resources.%s needs cpu and memory' % k)
    listen_port = int(args.get('--listen', ':7070').rsplit(':', 1)[-1])
    svc_ports = {p['port'] for p in svc['spec'].get('ports', [])}
    if listen_port not in svc_ports:
        fail('the Service does not publish --listen port %d' % listen_port)
    if not failures:
        print('ok: the manifests agree (headless Service, StatefulSet, claims, '
              'Secret, probes on the monitor port %d)' % mon_port)
    return pod['spec'].get('initContainers', []), server_c


def run_server(init, c):
    """ufo-server with the container's args; the secret prepared the way
    the init container does it."""
    tmp = tempfile.mkdtemp(prefix='ufo-k8s-')
    p = None
    try:
        src = os.path.join(tmp, 'secret-volume')
        with open(os.open(src, os.O_WRONLY | os.O_CREAT, 0o440), 'w') as f:
            f.write('kubernetes-check-secret-0123456789\n')
        mounts = {m['mountPath']: m for m in c.get('volumeMounts', [])}
        args = list(c['args'])
        for i in range(0, len(args) - 1, 2):
            if args[i] in ('--listen', '--monitor'):
                args[i + 1] = '127.0.0.1:0'
            elif args[i] == '--data':
                args[i + 1] = os.path.join(tmp, 'data')
            elif args[i] == '--secret-file':
                path = args[i + 1]
                if not any(path.startswith(m + '/') for m in mounts):
                    fail('--secret-file %s is on no volume of the container' % path)
                copied = False
                for ic in init:
                    cmd = ic.get('command', [])
                    if cmd and cmd[-1] == path:
                        local = os.path.join(tmp, 'secret')
                        subprocess.run(cmd[:-2] + [src, local], check=True)
                        args[i + 1], copied = local, True
                if not copied:
                    args[i + 1] = src
        p = subprocess.Popen([server] + args, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        if not line.startswith('listening on'):
            fail('ufo-server %s: %s' % (' '.join(args), p.communicate(timeout=10)[1]))
            return
        time.sleep(0.5)
        p.terminate()
        err = p.communicate(timeout=40)[1]
        if p.returncode:
            fail('ufo-server exited %d: %s' % (p.returncode, err))
        if 'warn' in err or 'error' in err:
            fail('ufo-server complained with the manifest args: %s' % err)
        if not failures:
            print('ok: ufo-server runs with the StatefulSet args and secret')
    finally:
        if p and p.poll() is None:
            p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    yamllint()
    res = check_manifests(load())
    if res:
        run_server(*res)
    if failures:
        print('%d problem(s)' % len(failures))
        sys.exit(1)


main()
