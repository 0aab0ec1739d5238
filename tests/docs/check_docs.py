#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The API reference against ufo.h, and the man pages against groff.

Fails when:
  * a function declared in libufo/include/ufo.h has no man page: no
    man/man3/NAME.3 file (a page, or a '.so' alias to one), or no page
    lists it in its NAME section;
  * the rendered page that documents a function does not show its
    prototype exactly as ufo.h declares it (whitespace aside);
  * a NAME section lists a ufo_ function that ufo.h does not declare;
  * a type, enum constant or macro of ufo.h (struct ufo_*, ufo_*_fn,
    UFO_*) is not mentioned in any man3 page;
  * groff -man -ww -z warns about any page (malformed roff), or a '.so'
    alias points at a missing page;
  * with UFO_SERVER / UFOCTL given: an option that `--help` prints is not
    in ufo-server(8) / ufoctl(1);
  * a complete program in a man page EXAMPLE or in a ```c block of docs/
    (one with main()) does not compile against ufo.h.
ufo.h is parsed generically: new declarations need pages, nothing else.

Usage: check_docs.py SOURCE_ROOT [UFO_SERVER UFOCTL]"""
import os
import re
import shutil
import subprocess
import sys

root = sys.argv[1]
HEADER = os.path.join(root, 'libufo', 'include', 'ufo.h')
MAN = os.path.join(root, 'man')
failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg)


def norm(s):
    s = re.sub(r'\s+', ' ', s).strip()
    s = re.sub(r'\s*([(),;*\[\]])\s*', r'\1', s)
    return s


def parse_header(path):
    """(functions {name: prototype}, other public symbols)."""
    text = open(path).read()
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    text = re.sub(r'//[^\n]*', ' ', text)
    macros = set()
    body = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith('#'):
            m = re.match(r'#\s*define\s+([A-Za-z_]\w*)', s)
            if m and m.group(1) != 'UFO_H':
                macros.add(m.group(1))
            continue
        body.append(line)
    text = '\n'.join(body)
    text = re.sub(r'extern\s+"C"\s*\{', ' ', text)
    # Split into top-level statements at ';' outside braces.
    stmts, depth, cur = [], 0, ''
    for ch in text:
        if ch == '{':
            depth += 1
        elif ch == '}':
            depth -= 1
            if depth < 0:  # the closing brace of extern "C"
                depth = 0
                continue
        cur += ch
        if ch == ';' and depth == 0:
            stmts.append(cur.strip())
            cur = ''
    funcs, others = {}, set(macros)
    for s in stmts:
        for kind, name in re.findall(r'\b(struct|enum)\s+(ufo_\w+)', s):
            others.add('%s %s' % (kind, name))
        if '{' in s and s.startswith('enum'):
            inner = s[s.index('{') + 1:s.rindex('}')]
            for item in inner.split(','):
                m = re.match(r'\s*([A-Za-z_]\w*)', item)
                if m:
                    others.add(m.group(1))
        if s.startswith('typedef'):
            m = re.search(r'\(\s*\*\s*(\w+)\s*\)', s) or re.search(r'(\w+)\s*;$', s)
            if m:
                others.add(m.group(1))
            continue
        if '{' in s:
            continue
        m = re.match(r'^[^(]*?\b(ufo_\w+)\s*\(', s)
        if m:
            funcs[m.group(1)] = norm(s)
    return funcs, {o for o in others if 'ufo' in o.lower()}


def read(path):
    with open(path, errors='replace') as f:
        return f.read()


def so_target(text):
    m = re.match(r'\s*\.so\s+(\S+)\s*$', text)
    return m.group(1) if m else None


def name_entries(text):
    m = re.search(r'^\.SH\s+"?NAME"?\s*\n(.*?)(?=^\.SH)', text, re.S | re.M)
    if not m:
        return None
    line = ' '.join(l for l in m.group(1).splitlines() if not l.startswith('.'))
    names = line.split('\\-')[0]
    return [n.strip().replace('\\', '') for n in names.split(',') if n.strip()]


def render(path):
    r = subprocess.run(['groff', '-man', '-Tutf8', '-P-c', '-P-b', '-P-u', '-rLL=400n',
                        '-rHY=0', path], cwd=MAN, capture_output=True, text=True)
    return r.stdout


def check_groff(pages):
    for p in pages:
        rel = os.path.relpath(p, MAN)
        r = subprocess.run(['groff', '-man', '-ww', '-z', rel], cwd=MAN,
                           capture_output=True, text=True)
        if r.returncode or r.stderr.strip():
            fail('groff -man -ww: %s: %s' % (rel, r.stderr.strip() or 'exit %d' % r.returncode))


def check_api(funcs, others):
    man3 = os.path.join(MAN, 'man3')
    pages = {f[:-2]: os.path.join(man3, f) for f in os.listdir(man3) if f.endswith('.3')}
    listed = {}
    texts = []
    for name, path in pages.items():
        text = read(path)
        target = so_target(text)
        if target:
            if not os.path.exists(os.path.join(MAN, target)):
                fail('%s: .so %s does not exist' % (path, target))
            continue
        texts.append(text)
        entries = name_entries(text)
        if entries is None:
            fail('%s has no NAME section' % path)
            continue
        for e in entries:
            listed[e] = path
    for fn, proto in sorted(funcs.items()):
        if fn not in pages:
            fail('%s (ufo.h) has no man/man3/%s.3 (a page, or ".so man3/PAGE.3")' % (fn, fn))
        if fn not in listed:
            fail('%s (ufo.h) is listed in no NAME section of man/man3' % fn)
            continue
        shown = norm(render(listed[fn]))
        if proto not in shown:
            fail('%s: the SYNOPSIS of %s does not show the prototype of ufo.h:\n  %s'
                 % (fn, os.path.basename(listed[fn]), proto))
        target = so_target(read(pages[fn])) if fn in pages else None
        if target and os.path.join(MAN, target) != listed[fn]:
            fail('man3/%s.3 points at %s, but %s documents it' % (fn, target, listed[fn]))
    for e, path in listed.items():
        if e.startswith('ufo_') and e not in funcs:
            fail('%s lists %s, which ufo.h does not declare' % (path, e))
    alltext = '\n'.join(texts).replace('\\', '')
    for o in sorted(others):
        word = o.split()[-1]
        if not re.search(r'\b%s\b' % re.escape(word), alltext):
            fail('%s (ufo.h) is not mentioned in any man3 page' % o)
    return list(pages.values())


def check_help(prog, page, pattern):
    out = subprocess.run([prog, '--help'], capture_output=True, text=True).stdout
    text = read(os.path.join(MAN, page)).replace('\\-', '-').replace('\\', '')
    opts = sorted(set(re.findall(pattern, out, re.M)))
    if not opts:
        fail('%s --help printed no options' % prog)
    for o in opts:
        if o not in text:
            fail('%s --help has %s, %s does not' % (os.path.basename(prog), o, page))
    return len(opts)


def examples():
    """(where, C source) of every complete program in the docs."""
    out = []
    for d in ('man1', 'man3', 'man8'):
        for f in sorted(os.listdir(os.path.join(MAN, d))):
            text = read(os.path.join(MAN, d, f))
            for block in re.findall(r'^\.EX\n(.*?)^\.EE', text, re.S | re.M):
                if 'main(' in block:
                    src = block.replace('\\e', '\\').replace('\\-', '-')
                    out.append(('man/%s/%s' % (d, f), src))
    docs = os.path.join(root, 'docs')
    for f in sorted(os.listdir(docs)):
        if f.endswith('.md'):
            for block in re.findall(r'```c\n(.*?)```', read(os.path.join(docs, f)), re.S):
                if 'main(' in block:
                    out.append(('docs/' + f, block))
    return out


def check_examples():
    cc = shutil.which('cc')
    if not cc:
        print('note: no C compiler; examples not compiled')
        return 0
    progs = examples()
    for where, src in progs:
        r = subprocess.run([cc, '-std=gnu11', '-Wall', '-Werror', '-fsyntax-only',
                            '-I', os.path.dirname(HEADER), '-x', 'c', '-'],
                           input=src, capture_output=True, text=True)
        if r.returncode:
            fail('the program in %s does not compile:\n%s' % (where, r.stderr))
    return len(progs)


def main():
    if not shutil.which('groff'):
        print('skip: groff not installed (apt-get install groff-base)')
        sys.exit(77)
    funcs, others = parse_header(HEADER)
    if len(funcs) < 10:
        fail('parsed only %d functions from %s: the parser is broken' % (len(funcs), HEADER))
    pages = check_api(funcs, others)
    pages += [os.path.join(MAN, d, f) for d in ('man1', 'man8')
              for f in os.listdir(os.path.join(MAN, d))]
    check_groff(pages)
    extra = ', %d example programs compile' % check_examples()
    if len(sys.argv) > 3:
        n = check_help(sys.argv[2], 'man8/ufo-server.8', r'^\s+(--[a-z][a-z-]*)')
        n += check_help(sys.argv[3], 'man1/ufoctl.1', r'(--[a-z][a-z-]*)')
        extra += ', %d --help options' % n
    if failures:
        print('%d problem(s)' % len(failures))
        sys.exit(1)
    print('ok: %d functions and %d other symbols of ufo.h documented; %d pages pass '
          'groff -ww%s' % (len(funcs), len(others), len(pages), extra))


main()
