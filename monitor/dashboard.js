// SPDX-License-Identifier: MIT
// The libufo dashboard: polls /api/v1/stats every second and plots rates
// computed from consecutive samples.  No network beyond this server: Chart.js
// is served by the monitor itself (/chart.js, embedded at build time).
// For tests, every canvas carries data-points (points plotted so far) and
// #summary holds a JSON digest of what the page shows.
'use strict';

const POLL_MS = 1000;
const WINDOW = 120; // points kept per chart
const MiB = 1048576;

const CLIENT_CHARTS = [
  { id: 'faults', title: 'Fault rate (per second)', series: [
    ['faults/s', (d, p, dt) => rate(d.context.faults, p.context.faults, dt)],
    ['write faults/s', (d, p, dt) => rate(d.context.wp_faults, p.context.wp_faults, dt)],
    ['evictions/s', (d, p, dt) => rate(d.context.evictions, p.context.evictions, dt)]] },
  { id: 'throughput', title: 'Fetch and writeback throughput (MiB/s)', series: [
    ['fetched', (d, p, dt) => rate(d.context.loaded_bytes, p.context.loaded_bytes, dt) / MiB],
    ['written back', (d, p, dt) => rate(d.context.writeback_bytes, p.context.writeback_bytes, dt) / MiB]] },
  { id: 'resident', title: 'Resident memory against the budget (MiB)', series: [
    ['resident', (d) => d.context.resident_bytes / MiB],
    ['dirty', (d) => d.context.dirty_bytes / MiB],
    ['high watermark', (d) => d.context.high_watermark_bytes / MiB],
    ['low watermark', (d) => d.context.low_watermark_bytes / MiB]] },
  { id: 'latency', log: true, title: 'Fault latency over the last second (µs, bucket upper bounds, log scale)', series: [
    ['p50', (d, p) => recentPercentile(d, p, 50)],
    ['p90', (d, p) => recentPercentile(d, p, 90)],
    ['p99', (d, p) => recentPercentile(d, p, 99)]] },
];

const SERVER_CHARTS = [
  { id: 'requests', title: 'Requests per second', series: [
    ['total', (d, p, dt) => rate(d.server.requests_total, p.server.requests_total, dt)],
    ['read', (d, p, dt) => rate(d.server.requests.read, p.server.requests.read, dt)],
    ['write', (d, p, dt) => rate(d.server.requests.write, p.server.requests.write, dt)],
    ['errors', (d, p, dt) => rate(d.server.errors_total, p.server.errors_total, dt)]] },
  { id: 'throughput', title: 'Data read and written (MiB/s)', series: [
    ['read', (d, p, dt) => rate(d.server.read_bytes, p.server.read_bytes, dt) / MiB],
    ['written', (d, p, dt) => rate(d.server.written_bytes, p.server.written_bytes, dt) / MiB]] },
  { id: 'connections', title: 'Connections', series: [
    ['open', (d) => d.server.connections],
    ['limit', (d) => d.server.max_connections]] },
  { id: 'fsync', title: 'Durability (per second)', series: [
    ['fdatasyncs/s', (d, p, dt) => rate(d.server.fdatasyncs, p.server.fdatasyncs, dt)],
    ['commit batches/s', (d, p, dt) => rate(d.server.commit_batches, p.server.commit_batches, dt)]] },
];

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd'];

let charts = null; // { id: { chart, spec, points } }
let prev = null;
let samples = 0;
let failures = 0;

function rate(now, before, dt) {
  return dt > 0 && now >= before ? (now - before) / dt : null;
}

// The percentile of the faults recorded since the previous sample, as the
// upper bound of its histogram bucket; null when none happened.
function recentPercentile(d, p, pct) {
  const now = d.context.fault_latency.counts;
  const before = p.context.fault_latency.counts;
  const le = d.context.fault_latency.le_us;
  const delta = now.map((c, i) => c - before[i]);
  const total = delta.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const want = Math.ceil(total * pct / 100);
  let seen = 0;
  for (let i = 0; i < delta.length; i++) {
    seen += delta[i];
    if (seen >= want) return le[i];
  }
  return le[le.length - 1];
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function makeCharts(specs) {
  const root = document.getElementById('charts');
  const out = {};
  for (const spec of specs) {
    const box = el('div', { class: 'chart' });
    box.appendChild(el('h3', {}, spec.title));
    const inner = el('div', { class: 'box' });
    const canvas = el('canvas', { id: 'chart-' + spec.id, 'data-points': '0' });
    inner.appendChild(canvas);
    box.appendChild(inner);
    root.appendChild(box);
    let chart = null;
    if (window.Chart) {
      chart = new Chart(canvas, {
        type: 'line',
        data: { labels: [], datasets: spec.series.map((s, i) => ({
          label: s[0], data: [], borderColor: COLORS[i % COLORS.length],
          backgroundColor: COLORS[i % COLORS.length], pointRadius: 0,
          borderWidth: 2, spanGaps: false, tension: 0 })) },
        options: { animation: false, responsive: true, maintainAspectRatio: false,
          interaction: { mode: 'index', intersect: false },
          scales: { y: spec.log ? { type: 'logarithmic' } : { beginAtZero: true },
            x: { ticks: { maxTicksLimit: 8 } } } },
      });
    }
    out[spec.id] = { chart, spec, canvas, points: 0 };
  }
  return out;
}

function plot(d, p, dt) {
  const label = new Date(d.time_seconds * 1000).toISOString().substr(11, 10);
  for (const id in charts) {
    const c = charts[id];
    const values = c.spec.series.map(s => {
      const v = s[1](d, p, dt);
      return v === null || v === undefined || !isFinite(v) ? null : v;
    });
    c.points++;
    c.canvas.setAttribute('data-points', String(c.points));
    if (!c.chart) continue;
    c.chart.data.labels.push(label);
    values.forEach((v, i) => c.chart.data.datasets[i].data.push(v));
    if (c.chart.data.labels.length > WINDOW) {
      c.chart.data.labels.shift();
      c.chart.data.datasets.forEach(ds => ds.data.shift());
    }
    c.chart.update('none');
  }
}

function fmtBytes(v) {
  if (v === null || v === undefined) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(1) : String(v)) + ' ' + u[i];
}

function table(id, title, headers, rows, empty) {
  let section = document.getElementById(id);
  if (!section) {
    section = el('div', { id });
    document.getElementById('tables').appendChild(section);
  }
  section.replaceChildren(el('h2', {}, title));
  if (!rows.length) {
    section.appendChild(el('div', { class: 'none' }, empty));
    return;
  }
  const t = el('table', { id: id + '-table' });
  const hr = el('tr');
  headers.forEach(h => hr.appendChild(el('th', { class: h[1] || '' }, h[0])));
  t.appendChild(hr);
  for (const r of rows) {
    const tr = el('tr', r.attrs);
    r.cells.forEach((v, i) => {
      const cls = (headers[i][1] || '') + (r.cls && r.cls[i] ? ' ' + r.cls[i] : '');
      tr.appendChild(el('td', { class: cls }, String(v)));
    });
    t.appendChild(tr);
  }
  section.appendChild(t);
}

function clientTables(d) {
  table('objects', 'Objects', [['id', 'l'], ['kind', 'l'], ['name', 'l'], ['size'],
    ['chunk'], ['resident'], ['dirty'], ['faults'], ['write faults'], ['evictions'], ['p99 latency']],
  d.objects.map(o => ({ attrs: { 'data-object': String(o.id) }, cells: [
    o.id, o.kind, o.name || '', fmtBytes(o.size_bytes), fmtBytes(o.chunk_size_bytes),
    fmtBytes(o.resident_bytes), fmtBytes(o.dirty_bytes), o.faults, o.wp_faults,
    o.evictions, o.p99_us ? '≤ ' + o.p99_us + ' µs' : ''] })), 'no objects');
  table('servers', 'Servers', [['address', 'l'], ['transport', 'l'], ['state', 'l'],
    ['object', 'l'], ['connections'], ['requests'], ['errors'], ['latency']],
  d.servers.map(s => ({ attrs: { 'data-server': s.address }, cls: [null, null, s.state],
    cells: [s.address, s.transport, s.state, s.name || String(s.object),
      s.connected + ' / ' + s.connections, s.requests, s.errors,
      (s.latency_seconds * 1e6).toFixed(0) + ' µs'] })), 'no remote objects');
}

function serverTables(d) {
  const s = d.server;
  const ops = Object.keys(s.requests);
  table('ops', 'Requests by operation', [['operation', 'l'], ['requests']],
    ops.map(op => ({ attrs: { 'data-op': op }, cells: [op, s.requests[op]] })), 'none');
  table('store', 'Store', [['listen', 'l'], ['objects'], ['connections'],
    ['requests'], ['errors'], ['read'], ['written'], ['fdatasyncs']],
  [{ attrs: {}, cells: [d.listen, s.objects, s.connections + ' / ' + s.max_connections,
    s.requests_total, s.errors_total, fmtBytes(s.read_bytes), fmtBytes(s.written_bytes),
    s.fdatasyncs] }], '');
}

function summarize(d) {
  const points = {};
  for (const id in charts) points[id] = charts[id].points;
  const sum = { kind: d.kind, samples, failures, plots: !!window.Chart, points };
  if (d.kind === 'client') {
    sum.objects = d.objects.map(o => ({ id: o.id, kind: o.kind, name: o.name, faults: o.faults }));
    sum.servers = d.servers.map(s => ({ address: s.address, state: s.state }));
    sum.faults = d.context.faults;
  } else {
    sum.objects = d.server.objects;
    sum.requests = d.server.requests_total;
  }
  document.getElementById('summary').textContent = JSON.stringify(sum);
}

async function tick() {
  try {
    const r = await fetch('/api/v1/stats', { cache: 'no-store' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    const d = await r.json();
    if (!charts) {
      const server = d.kind === 'server';
      document.getElementById('title').textContent =
        server ? 'ufo-server monitor — ' + d.listen : 'libufo monitor — pid ' + d.pid;
      document.title = server ? 'ufo-server ' + d.listen : 'libufo pid ' + d.pid;
      charts = makeCharts(server ? SERVER_CHARTS : CLIENT_CHARTS);
    }
    samples++;
    if (prev) plot(d, prev, d.time_seconds - prev.time_seconds);
    prev = d;
    (d.kind === 'server' ? serverTables : clientTables)(d);
    summarize(d);
    const st = document.getElementById('status');
    st.className = '';
    st.textContent = 'libufo ' + d.version + ' · updated ' +
      new Date(d.time_seconds * 1000).toLocaleTimeString() + ' · every second' +
      (window.Chart ? '' : ' · Chart.js was not built in: tables only');
  } catch (e) {
    failures++;
    const st = document.getElementById('status');
    st.className = 'down';
    st.textContent = 'cannot reach the monitor: ' + e.message;
  }
}

tick();
setInterval(tick, POLL_MS);
