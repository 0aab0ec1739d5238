#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Lints deploy/container/Containerfile without a container engine.

No engine runs on the test machine, so the image is never built here.
What is checked instead:
  * syntax: known instructions, JSON-form ENTRYPOINT/CMD/HEALTHCHECK parse;
  * stages: every FROM is Debian 12, there is a build stage and a runtime
    stage, COPY --from names an earlier stage;
  * apt: 'apt-get update' in the same RUN as 'install', -y,
    --no-install-recommends, lists removed, and every package exists in
    Debian 12 (apt-cache, the local package index);
  * the build stage copies every directory the root meson.build subdir()s
    (tests only when built) and every COPY source exists;
  * the runtime stage: no compiler or -dev package; it has the Debian
    package of every library that ufo-server, ufoctl and libufo.so link
    (readelf NEEDED of the build tree); USER is not root; HEALTHCHECK,
    EXPOSE of the --listen and --monitor ports, and UFO_MONITOR_PORT agree
    with CMD; the libufo version copied is the project's;
  * the ENTRYPOINT + CMD arguments start the built ufo-server (paths and
    ports swapped for scratch ones) and the health check script reports it
    healthy, then unhealthy once it stopped; shellcheck on the script.

Usage: lint_containerfile.py SOURCE_ROOT BUILD_DIR"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

root, build = sys.argv[1], sys.argv[2]
CF = os.path.join(root, 'deploy', 'container', 'Containerfile')
KNOWN = {'FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY',
         'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD',
         'STOPSIGNAL', 'HEALTHCHECK', 'SHELL'}
DEBIAN12 = re.compile(r'^(docker\.io/(library/)?)?debian:(12|bookworm)([.\-][\w.\-]*)?$')
failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg)


def instructions(path):
    """[(lineno, INSTRUCTION, argument text)], continuations joined."""
    out, buf, start = [], '', 0
    with open(path) as f:
        for n, line in enumerate(f, 1):
            s = line.rstrip('\n')
            if not buf and (not s.strip() or s.lstrip().startswith('#')):
                continue
            if buf and s.lstrip().startswith('#'):
                continue
            if not buf:
                start = n
            if s.endswith('\\'):
                buf += s[:-1] + ' '
                continue
            buf += s
            word, _, rest = buf.strip().partition(' ')
            out.append((start, word.upper(), rest.strip()))
            if word != word.upper():
                fail('line %d: write instructions in capitals (%s)' % (start, word))
            buf = ''
    if buf:
        fail('the file ends inside a continued line')
    return out


def stages(instr):
    res = []
    for n, ins, arg in instr:
        if ins not in KNOWN:
            fail('line %d: unknown instruction %s' % (n, ins))
        if ins == 'FROM':
            m = re.match(r'^(?:--platform=\S+\s+)?(\S+)(?:\s+[Aa][Ss]\s+(\S+))?$', arg)
            if not m:
                fail('line %d: cannot parse FROM %s' % (n, arg))
                continue
            res.append({'image': m.group(1), 'name': m.group(2), 'line': n, 'body': []})
        elif not res:
            if ins != 'ARG':
                fail('line %d: %s before the first FROM' % (n, ins))
        else:
            res[-1]['body'].append((n, ins, arg))
    return res


def json_args(n, ins, arg):
    try:
        v = json.loads(arg)
    except ValueError:
        fail('line %d: %s is not in JSON (exec) form: %s' % (n, ins, arg))
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        fail('line %d: %s must be a JSON array of strings' % (n, ins))
        return []
    return v


def apt_packages(stage):
    if 'apt' in stage:
        return stage['apt']
    pkgs = stage['apt'] = []
    for n, ins, arg in stage['body']:
        if ins != 'RUN' or 'apt-get install' not in arg:
            continue
        if 'apt-get update' not in arg.split('apt-get install')[0]:
            fail('line %d: apt-get install without apt-get update in the same RUN' % n)
        for need in ('-y', '--no-install-recommends'):
            if need not in arg.split():
                fail('line %d: apt-get install without %s' % (n, need))
        if 'rm -rf /var/lib/apt/lists/*' not in arg:
            fail('line %d: the apt lists are not removed in the same RUN' % n)
        words = arg.split('apt-get install', 1)[1].split('&&')[0].split()
        pkgs += [w for w in words if not w.startswith('-')]
    return pkgs


def check_packages_exist(pkgs):
    if not shutil.which('apt-cache'):
        print('note: no apt-cache; package names not checked')
        return
    for p in sorted(set(pkgs)):
        r = subprocess.run(['apt-cache', 'show', '--no-all-versions', p],
                           capture_output=True, text=True)
        if r.returncode or not r.stdout.strip():
            fail('package %s is not in the Debian 12 index' % p)


def check_build_stage(st):
    copied = set()
    for n, ins, arg in st['body']:
        if ins in ('COPY', 'ADD') and '--from' not in arg:
            srcs = shlex.split(arg)[:-1]
            for s in srcs:
                copied.add(s.rstrip('/'))
                if not os.path.exists(os.path.join(root, s)):
                    fail('line %d: COPY source %s does not exist' % (n, s))
    with open(os.path.join(root, 'meson.build')) as f:
        subdirs = re.findall(r"^\s*subdir\('([^']+)'\)", f.read(), re.M)
    setup = ' '.join(a for _, i, a in st['body'] if i == 'RUN' and 'meson setup' in a)
    for d in subdirs:
        if d == 'tests' and '-Dtests=false' in setup:
            continue
        if d not in copied:
            fail('build stage: meson.build has subdir(%r) but the directory is '
                 'not copied' % d)
    for f in ('meson.build', 'meson_options.txt'):
        if f not in copied:
            fail('build stage: %s is not copied' % f)


def needed_packages():
    """Debian packages providing the libraries the shipped binaries link."""
    bins = [os.path.join(build, 'server', 'ufo-server'),
            os.path.join(build, 'cli', 'ufoctl'),
            os.path.join(build, 'libufo', 'libufo.so')]
    pkgs = {}
    for b in bins:
        if not os.path.exists(b):
            fail('%s not built' % b)
            continue
        out = subprocess.run(['readelf', '-d', b], capture_output=True,
                             text=True, check=True).stdout
        for so in re.findall(r'\(NEEDED\).*\[(.+)\]', out):
            if so.startswith('libufo.so'):
                continue
            r = subprocess.run(['dpkg', '-S', '*/' + so], capture_output=True, text=True)
            owners = {line.split(':')[0] for line in r.stdout.splitlines()
                      if line.strip() and not line.startswith('diversion')}
            if not owners:
                fail('no Debian package provides %s (linked by %s)' % (so, b))
            pkgs[so] = owners
    return pkgs


def check_runtime(st, build_names):
    body = st['body']
    pkgs = apt_packages(st)
    for p in pkgs:
        if p.endswith('-dev') or p in ('build-essential', 'gcc', 'meson', 'ninja-build'):
            fail('runtime stage installs build package %s' % p)
    for so, owners in needed_packages().items():
        if not owners & (set(pkgs) | {'libc6'}):
            fail('runtime stage lacks %s (for %s)' % (' or '.join(sorted(owners)), so))
    users = [a for _, i, a in body if i == 'USER']
    if not users:
        fail('runtime stage has no USER: it would run as root')
    elif users[-1].split(':')[0] in ('root', '0'):
        fail('runtime stage runs as root (USER %s)' % users[-1])
    elif not users[-1].split(':')[0].isdigit():
        print('note: USER is a name; Kubernetes runAsNonRoot needs a number')
    for n, i, a in body:
        if i == 'COPY' and '--from' in a:
            stage = re.search(r'--from=(\S+)', a).group(1)
            if stage not in build_names:
                fail('line %d: COPY --from=%s names no earlier stage' % (n, stage))
    with open(os.path.join(root, 'meson.build')) as f:
        version = re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)
    libs = re.findall(r'libufo\.so\.(\d+\.\d+\.\d+)', ' '.join(a for _, i, a in body))
    if not libs or any(v != version for v in libs):
        fail('runtime stage copies libufo.so.%s, the project is %s' % (libs, version))
    entry = cmd = hc = None
    for n, i, a in body:
        if i == 'ENTRYPOINT':
            entry = json_args(n, i, a)
        elif i == 'CMD':
            cmd = json_args(n, i, a)
        elif i == 'HEALTHCHECK':
            m = re.search(r'\bCMD\s+(\[.*\])\s*$', a)
            hc = json_args(n, i, m.group(1)) if m else fail('line %d: HEALTHCHECK without CMD [...]' % n)
    if not entry or not cmd:
        fail('runtime stage needs ENTRYPOINT and CMD in exec form')
        return None
    if not hc:
        fail('runtime stage has no HEALTHCHECK')
    args = dict(zip(cmd[::2], cmd[1::2]))
    exposed = set(' '.join(a for _, i, a in body if i == 'EXPOSE').split())
    for flag in ('--listen', '--monitor'):
        if flag not in args:
            fail('CMD has no %s' % flag)
            continue
        port = args[flag].rsplit(':', 1)[-1]
        if port not in exposed:
            fail('CMD %s %s: port %s is not in EXPOSE %s' % (flag, args[flag], port, exposed))
        if args[flag].startswith('127.'):
            fail('CMD %s %s is loopback: unreachable from outside the container'
                 % (flag, args[flag]))
    envs = ' '.join(a for _, i, a in body if i == 'ENV')
    m = re.search(r'UFO_MONITOR_PORT=(\d+)', envs)
    if '--monitor' in args and (not m or m.group(1) != args['--monitor'].rsplit(':', 1)[-1]):
        fail('ENV UFO_MONITOR_PORT does not match CMD --monitor %s' % args['--monitor'])
    hc_src = None
    for _, i, a in body:
        if i == 'COPY' and hc and a.split()[-1] == hc[0]:
            hc_src = os.path.join(root, a.split()[0])
    if hc and not hc_src:
        fail('the HEALTHCHECK program %s is not COPYed from the source tree' % hc[0])
    return entry, cmd, hc_src


def run_entrypoint(cmd, hc_src):
    """ufo-server with CMD's flags (scratch paths and ports), then the
    health check script against it, before and after it stops."""
    server = os.path.join(build, 'server', 'ufo-server')
    tmp = tempfile.mkdtemp(prefix='ufo-containerfile-')
    p = None
    try:
        args = list(cmd)
        secret = os.path.join(tmp, 'secret')
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
            f.write('containerfile-lint-secret-0123456789\n')
        for i in range(0, len(args) - 1, 2):
            if args[i] in ('--listen', '--monitor'):
                args[i + 1] = '127.0.0.1:0'
            elif args[i] == '--data':
                args[i + 1] = os.path.join(tmp, 'data')
            elif args[i] == '--secret-file':
                args[i + 1] = secret
        out = open(os.path.join(tmp, 'out'), 'w+')
        p = subprocess.Popen([server] + args, stdout=out, stderr=subprocess.PIPE, text=True)
        port = None
        for _ in range(100):
            out.seek(0)
            m = re.search(r'^monitor on http://[^:]+:(\d+)/', out.read(), re.M)
            if m:
                port = m.group(1)
                break
            if p.poll() is not None:
                break
            time.sleep(0.1)
        if not port:
            fail('ufo-server %s did not start: %s' % (' '.join(args),
                 p.communicate(timeout=10)[1] if p.poll() is not None else 'no monitor line'))
            return
        print('ok: ufo-server starts with the CMD flags')
        env = dict(os.environ, UFO_MONITOR_PORT=port)
        r = subprocess.run([hc_src], env=env, capture_output=True, text=True, timeout=30)
        if r.returncode:
            fail('health check on a running server: %s%s' % (r.stdout, r.stderr))
        else:
            print('ok: health check: %s' % r.stdout.strip())
        p.terminate()
        p.wait(timeout=40)
        r = subprocess.run([hc_src], env=env, capture_output=True, text=True, timeout=30)
        if not r.returncode:
            fail('health check reports a stopped server healthy')
        else:
            print('ok: health check on a stopped server: %s' % r.stdout.strip())
    finally:
        if p and p.poll() is None:
            p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    st = stages(instructions(CF))
    if len(st) < 2:
        fail('want a build stage and a runtime stage, found %d FROM' % len(st))
    for s in st:
        if not DEBIAN12.match(s['image']) and s['image'] not in [x['name'] for x in st]:
            fail('line %d: FROM %s is not Debian 12' % (s['line'], s['image']))
    names = [s['name'] for s in st if s['name']]
    if len(names) != len(set(names)):
        fail('stage names repeat: %s' % names)
    all_pkgs = []
    for s in st[:-1]:
        all_pkgs += apt_packages(s)
        check_build_stage(s)
    runtime = st[-1]
    res = check_runtime(runtime, names)
    all_pkgs += apt_packages(runtime)
    check_packages_exist(all_pkgs)
    if res and res[2]:
        if shutil.which('shellcheck'):
            r = subprocess.run(['shellcheck', res[2]], capture_output=True, text=True)
            if r.returncode:
                fail('shellcheck %s:\n%s' % (res[2], r.stdout))
            else:
                print('ok: shellcheck on the health check')
        else:
            print('note: shellcheck not installed; health check script not linted')
        run_entrypoint(res[1], res[2])
    if failures:
        print('%d problem(s) in %s' % (len(failures), CF))
        sys.exit(1)
    print('ok: %s (%d stages, %d packages); the image was not built: no '
          'container engine here' % (CF, len(st), len(set(all_pkgs))))


main()
