#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that libufo/src stays laid out by layer (docs/architecture.md).

  include graph   no cycle between the folders of libufo/src (engine,
                  backend, cluster, client, the top: open.c, and util.h,
                  which includes nothing of ours), nor between files;
  rules           the engine includes nothing of backend/ but backend.h and
                  nothing of client/ or cluster/; client/ never includes the
                  engine, a backend or the cluster;
  call graph      (with --objects LIBUFO.a) no two object files call each
                  other in a circle, and no two folders either: the symbols
                  each object defines and uses, read with nm.

Usage: check-layers.py [--objects build/libufo/libufo.a] [SRC_DIR]
Exits 1 and prints each cycle or broken rule; 0 when all hold.
"""
import argparse
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(rel):
    """engine/load.c -> engine; util.h -> util (a leaf every layer may
    include); open.c -> top."""
    if '/' in rel:
        return rel.split('/')[0]
    return 'util' if rel == 'util.h' else 'top'


def source_files(src):
    for root, _, names in os.walk(src):
        for n in sorted(names):
            if n.endswith(('.c', '.h')):
                yield os.path.relpath(os.path.join(root, n), src)


def resolve(src, rel, inc):
    """The file of src an include names (own folder first, then src), or
    None for headers outside libufo/src (ufo.h, transport.h, ...)."""
    for cand in (os.path.join(os.path.dirname(rel), inc), inc):
        if os.path.isfile(os.path.join(src, cand)):
            return os.path.normpath(cand)
    return None


def include_graph(src):
    g = {}
    for rel in source_files(src):
        text = open(os.path.join(src, rel), encoding='utf-8').read()
        g[rel] = sorted({t for t in (resolve(src, rel, i)
                                     for i in INCLUDE.findall(text)) if t})
    return g


def cycles(g):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def folder_graph(g):
    fg = {}
    for a, targets in g.items():
        for b in targets:
            fa, fb = folder_of(a), folder_of(b)
            if fa != fb:
                fg.setdefault(fa, set()).add(fb)
    return {k: sorted(v) for k, v in fg.items()}


def rule_violations(g):
    bad = []
    for a, targets in g.items():
        fa = folder_of(a)
        for b in targets:
            fb = folder_of(b)
            if fa == 'engine' and fb == 'backend' and b != 'backend/backend.h':
                bad.append(f'{a} includes {b}: the engine sees only backend/backend.h')
            if fa == 'engine' and fb in ('client', 'cluster'):
                bad.append(f'{a} includes {b}: the engine reaches backends only through backend.h')
            if fa == 'client' and fb in ('engine', 'backend', 'cluster'):
                bad.append(f'{a} includes {b}: client/ never includes the layers above it')
    return bad


def call_graph(archive):
    """object -> objects whose symbols it uses, from nm -A on the archive."""
    out = subprocess.run(['nm', '-A', archive], check=True,
                         capture_output=True, text=True).stdout
    defined, used = {}, {}
    for line in out.splitlines():
        m = re.match(r'^[^:]+:([^:]+):\s*(?:[0-9a-f]+)?\s+([A-Za-z])\s+(\S+)$', line)
        if not m:
            continue
        obj, kind, sym = m.groups()
        if kind == 'U':
            used.setdefault(obj, set()).add(sym)
        elif kind.isupper():
            defined[sym] = obj
    # Only libufo/src's own objects (src_*): transport/ and monitor/ are
    # linked into the archive too but are not these layers.
    g = {}
    for obj, syms in used.items():
        if obj.startswith('src_'):
            g[obj] = sorted({defined[s] for s in syms
                             if s in defined and defined[s] != obj and
                             defined[s].startswith('src_')})
    return g


def object_file(obj):
    """meson's object name (src_engine_load.c.o) -> engine/load.c."""
    name = re.sub(r'\.o$', '', obj)
    name = re.sub(r'^src_', '', name)
    parts = name.split('_')
    if parts[0] in ('engine', 'backend', 'cluster', 'client'):
        return parts[0] + '/' + '_'.join(parts[1:])
    return name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('src', nargs='?',
                    default=os.path.join(os.path.dirname(__file__), '..',
                                         'libufo', 'src'))
    ap.add_argument('--objects', help='libufo.a, for the call graph')
    a = ap.parse_args()

    problems = []
    g = include_graph(a.src)
    for c in cycles(g):
        problems.append('include cycle between files: ' + ' <-> '.join(c))
    fg = folder_graph(g)
    for c in cycles(fg):
        problems.append('include cycle between folders: ' + ' <-> '.join(c))
    problems += rule_violations(g)
    if a.objects:
        cg = call_graph(a.objects)
        cg = {object_file(k): [object_file(t) for t in v] for k, v in cg.items()}
        for c in cycles(cg):
            problems.append('call cycle between files: ' + ' <-> '.join(c))
        for c in cycles(folder_graph(cg)):
            problems.append('call cycle between folders: ' + ' <-> '.join(c))
    for p in problems:
        print(p)
    print('folders: ' + '; '.join(f'{k} -> {", ".join(v)}'
                                  for k, v in sorted(fg.items())))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
