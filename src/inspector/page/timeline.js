/* global document, Option */
/** The event timeline: newest first, filtered by text, actor and noise toggles. */

const MAX_ROWS = 300;
const TICKS = new Set(['LOAD_SAMPLED', 'STATUS_TICKED']);
const SERVER = /^(REGISTERED|AVAILABILITY_|JOB_ASSIGNED|JOB_TERMINATED|SERVER_|REQUEST_)/;
const PROCESS = /^(PROCESS_|JOB_|LAUNCH|PREWARM_|CHILD_)/;
const BAD = /(LOST|REFUSED|FAILED|TIMED_OUT|EXCEEDED|KILL)/;

let lastRendered = '';
let newestSeen = 0;

export function initTimeline(store, render) {
  for (const id of ['filter-text', 'filter-internal', 'filter-ticks', 'filter-actor']) {
    document.getElementById(id).addEventListener('input', () => {
      lastRendered = '';
      render();
    });
  }
}

function kind(type) {
  if (type.startsWith('xstate.')) return 'internal';
  if (BAD.test(type)) return 'bad';
  if (SERVER.test(type)) return 'server';
  if (PROCESS.test(type)) return 'process';
  return '';
}

function actorName(store, sessionId) {
  return store.actors.get(sessionId)?.id ?? '·';
}

function payloadText(payload) {
  if (!payload || (typeof payload === 'object' && Object.keys(payload).length === 0)) return '';
  const s = JSON.stringify(payload);
  return s.length > 160 ? `${s.slice(0, 160)}…` : s;
}

function syncActorFilter(store) {
  const select = document.getElementById('filter-actor');
  const names = [
    ...new Set([...store.actors.values()].filter((a) => a.machineId).map((a) => a.id)),
  ].sort();
  const have = [...select.options].slice(1).map((o) => o.value);
  if (have.join() === names.join()) return;
  const current = select.value;
  select.replaceChildren(select.options[0], ...names.map((n) => new Option(n, n)));
  select.value = names.includes(current) ? current : '';
}

export function renderTimeline(store) {
  syncActorFilter(store);
  const q = document.getElementById('filter-text').value.trim().toLowerCase();
  const internal = document.getElementById('filter-internal').checked;
  const ticks = document.getElementById('filter-ticks').checked;
  const actor = document.getElementById('filter-actor').value;
  const key = `${store.lastSeq}|${q}|${internal}|${ticks}|${actor}|${store.actors.size}`;
  if (key === lastRendered) return;
  lastRendered = key;

  const rows = [];
  for (let i = store.events.length - 1; i >= 0 && rows.length < MAX_ROWS; i--) {
    const e = store.events[i];
    const target = actorName(store, e.target);
    const source = e.source ? actorName(store, e.source) : '';
    if (!internal && e.type.startsWith('xstate.')) continue;
    if (!ticks && TICKS.has(e.type)) continue;
    if (actor && target !== actor && source !== actor) continue;
    if (q && !`${e.type} ${target} ${source}`.toLowerCase().includes(q)) continue;
    const li = document.createElement('li');
    if (e.seq > newestSeen && newestSeen > 0) li.className = 'fresh';
    const time = document.createElement('span');
    time.className = 'time';
    time.textContent = new Date(e.at).toISOString().slice(11, 23);
    const what = document.createElement('span');
    what.className = 'what';
    const type = document.createElement('span');
    type.className = `type ${kind(e.type)}`;
    type.textContent = e.type;
    const route = document.createElement('span');
    route.className = 'route';
    route.textContent = source && source !== target ? `${source} → ${target}` : `→ ${target}`;
    what.append(type, route);
    li.append(time, what);
    const payload = payloadText(e.payload);
    if (payload) {
      const p = document.createElement('span');
      p.className = 'payload';
      p.textContent = payload;
      li.append(p);
    }
    rows.push(li);
  }
  newestSeen = store.lastSeq;
  document.getElementById('events').replaceChildren(...rows);
}
