
'use strict';
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const mb = (bytes) => (bytes / 1048576).toFixed(1) + ' MB';
const isRecord = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && v.data !== null && typeof v.data === 'object';
const isDid = (v) => typeof v === 'string' && v.startsWith('did:');

// A resolved record as a nested tree: its name, type and DID, then every field; references
// resolved are records of their own, references left as DIDs say why.
function recordNode(rec, reasons, open) {
  const details = document.createElement('details');
  details.open = open;
  const summary = document.createElement('summary');
  summary.append(el('strong', null, (rec.data.basic && rec.data.basic.name) || '(no name)'));
  if (rec.oip && rec.oip.recordType) summary.append(el('span', 'type', rec.oip.recordType));
  if (rec._circular) summary.append(el('span', 'circular', ' already shown above'));
  if (rec.oip && rec.oip.did) summary.append(el('span', 'did', rec.oip.did));
  details.append(summary);
  const list = el('ul');
  for (const [category, fields] of Object.entries(rec.data)) {
    if (category === 'basic' || fields === null || typeof fields !== 'object') continue;
    for (const [key, value] of Object.entries(fields)) list.append(fieldItem(category + '.' + key, value, reasons));
  }
  details.append(list);
  return details;
}

function fieldItem(key, value, reasons) {
  const item = el('li');
  item.append(el('span', 'key', key + ': '));
  const values = Array.isArray(value) ? value : [value];
  if (!values.some((v) => isRecord(v) || isDid(v))) {
    item.append(document.createTextNode(values.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(', ')));
    return item;
  }
  const list = el('ul');
  for (const v of values) {
    const entry = el('li');
    if (isRecord(v)) entry.append(recordNode(v, reasons, false));
    else if (isDid(v)) entry.append(el('span', 'unresolved', v + (reasons[v] ? ' (' + reasons[v] + ')' : '')));
    else entry.append(document.createTextNode(String(v)));
    list.append(entry);
  }
  item.append(list);
  return item;
}

async function resolve(event) {
  if (event) event.preventDefault();
  const params = new URLSearchParams({ did: $('did').value.trim(), resolveDepth: $('depth').value });
  if ($('names').checked) params.set('resolveNamesOnly', 'true');
  $('summary').textContent = 'Resolving…';
  try {
    const res = await fetch('/api/records?' + params);
    const body = await res.json();
    const tree = $('tree');
    tree.replaceChildren();
    if (!res.ok) {
      $('summary').textContent = `${res.status} ${body.code}: ${body.error}`;
      return;
    }
    const r = body.resolution;
    const reasons = {};
    for (const u of r.unresolved) reasons[u.did] = u.reason;
    const why = r.unresolved.length ? ' (' + r.unresolved.map((u) => u.reason).join(', ') + ')' : '';
    $('summary').textContent = `${body.records.length} record(s) at depth ${r.depth}: ${r.fetched} looked up, ` +
      `${r.fromCache} from cache, ${r.unresolved.length} unresolved${why}, ${r.circular} circular, ` +
      `${r.elapsedMs} ms, answer cache ${res.headers.get('x-cache') || '-'}`;
    for (const rec of body.records) tree.append(recordNode(rec, reasons, true));
  } catch (e) {
    $('summary').textContent = 'The request failed: ' + e;
  }
}

function duration(secs) {
  if (secs < 120) return secs + ' s';
  if (secs < 7200) return Math.round(secs / 60) + ' min';
  return (secs / 3600).toFixed(1) + ' h';
}

function stateSpan(text) {
  return el('span', 'state-' + text, text);
}

// Memory readings: the monitor's window, plus what each refresh of this page saw.
const readings = [];
let previous = null;

function draw(memory, at) {
  for (const s of memory.samples) {
    const t = at - s.ageSecs * 1000;
    if (!readings.some((r) => Math.abs(r.t - t) < 1500)) readings.push({ t, rss: s.rssBytes, heap: s.heapBytes });
  }
  readings.push({ t: at, rss: memory.rssBytes, heap: memory.heapBytes });
  readings.sort((a, b) => a.t - b.t);
  while (readings.length > 2 && at - readings[0].t > memory.windowSecs * 1000) readings.shift();
  const span = Math.max(10000, at - readings[0].t);
  const top = Math.max(...readings.map((r) => r.rss), 1);
  const x = (t) => (600 * (1 - (at - t) / span)).toFixed(1);
  const y = (v) => (120 - (110 * v) / top).toFixed(1);
  $('rss-line').setAttribute('points', readings.map((r) => x(r.t) + ',' + y(r.rss)).join(' '));
  $('heap-line').setAttribute('points', readings.map((r) => x(r.t) + ',' + y(r.heap)).join(' '));
  const trend = $('trend');
  const t = memory.trend;
  if (t.shape === 'gathering') {
    trend.textContent = `gathering (${duration(t.spanSecs)} of ${duration(t.neededSecs)})`;
    trend.className = 'badge';
  } else if (t.shape === 'flat') {
    trend.textContent = `flat, within ${(t.withinBytes / 1048576).toFixed(1)} MB over ${duration(t.spanSecs)}`;
    trend.className = 'badge shape-flat';
  } else {
    trend.textContent = `${t.shape}, ${(t.bytesPerHour / 1048576).toFixed(1)} MB/h over ${duration(t.spanSecs)}`;
    trend.className = 'badge shape-' + t.shape;
  }
  $('memory-figures').textContent = `RSS ${mb(memory.rssBytes)} (blue), heap ${mb(memory.heapBytes)} (green), ` +
    `last ${duration(Math.round(span / 1000))}; the monitor samples every ${duration(memory.intervalSecs)} over ${duration(memory.windowSecs)}`;
}

async function refresh() {
  try {
    const res = await fetch('/status.json', { cache: 'no-store' });
    const s = await res.json();
    const at = Date.now();
    $('version').textContent = `v${s.version}, up ${duration(s.uptimeSecs)}`;
    const relays = $('relays');
    relays.replaceChildren();
    if (s.relays.length === 0) relays.append(el('p', null, 'file source: no relay to ask'));
    for (const r of s.relays) {
      const line = el('div', 'relay');
      line.append(el('code', null, r.url), document.createTextNode(' '), stateSpan(r.state),
        document.createTextNode(', circuit '), stateSpan(r.circuit), document.createTextNode(', feed '), stateSpan(r.watch));
      relays.append(line);
    }
    const n = s.negativeCache;
    const rate = n.hitRate === null ? 'no lookups yet' : `${(100 * n.hitRate).toFixed(1)}% of ${n.lookups} lookups hit`;
    $('negative').textContent = `${n.entries} souls known missing; ${rate}`;
    $('records').textContent = `${mb(s.recordCache.bytes)} held, ${s.recordCache.hits} hits`;
    $('streams').textContent = `${s.media.activeStreams} open, ${mb(s.media.bytesSent)} sent`;
    if (previous) {
      const perSec = (s.requests.total - previous.total) / ((at - previous.at) / 1000);
      $('rate').textContent = `${perSec.toFixed(1)} requests/s (${s.requests.total} in all)`;
    } else {
      $('rate').textContent = `${s.requests.total} in all`;
    }
    previous = { total: s.requests.total, at };
    draw(s.memory, at);
    $('updated').textContent = 'updated ' + new Date(at).toLocaleTimeString();
  } catch (e) {
    $('updated').textContent = 'status unavailable: ' + e;
  }
}

$('resolve').addEventListener('submit', resolve);
resolve();
refresh();
setInterval(refresh, 3000);
