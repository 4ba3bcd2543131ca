/* global document, window, WebSocket, location, requestAnimationFrame */
/**
 * The inspector page: keeps the picture the server streams (see src/inspector/messages.ts)
 * and re-renders on the next animation frame. Every message is idempotent, so a page that
 * reconnects simply receives the whole picture again.
 */
import { renderAgents, renderCapacity, renderCharts, renderHeader, renderActors } from './views.js';
import { renderTimeline, initTimeline } from './timeline.js';

const MAX_EVENTS = 2000;

export const store = {
  hello: undefined,
  charts: new Map(), // machineId → svg markup
  actors: new Map(), // sessionId → ActorInfo
  snapshots: new Map(), // sessionId → SnapshotInfo
  events: [],
  lastSeq: 0,
  /** The job process whose chart is shown; `undefined` follows the busiest one. */
  pinnedProc: undefined,
  /** With several agents: the worker whose charts are shown; `undefined` is the first. */
  selectedRoot: undefined,
};

let scheduled = false;
export function render() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    renderHeader(store);
    renderAgents(store, selectRoot);
    renderCapacity(store);
    renderActors(store, selectProc);
    renderCharts(store);
    renderTimeline(store);
  });
}

function selectRoot(sessionId) {
  store.selectedRoot = sessionId;
  store.pinnedProc = undefined;
  render();
}

function selectProc(sessionId) {
  store.pinnedProc = store.pinnedProc === sessionId ? undefined : sessionId;
  render();
}

function apply(m) {
  switch (m.t) {
    case 'hello':
      store.hello = m;
      break;
    case 'chart':
      store.charts.set(m.machineId, m.svg);
      break;
    case 'actor':
      // A root actor's id is XState's generated `x:0`; its machine's name says more.
      if (!m.actor.parentId && m.actor.machineId) m.actor.id = m.actor.machineId;
      store.actors.set(m.actor.sessionId, m.actor);
      break;
    case 'gone':
      store.actors.delete(m.sessionId);
      store.snapshots.delete(m.sessionId);
      if (store.pinnedProc === m.sessionId) store.pinnedProc = undefined;
      if (store.selectedRoot === m.sessionId) store.selectedRoot = undefined;
      break;
    case 'snapshot':
      store.snapshots.set(m.snapshot.sessionId, m.snapshot);
      break;
    case 'events':
      for (const e of m.events) {
        if (e.seq <= store.lastSeq) continue; // replayed after a reconnect
        store.events.push(e);
        store.lastSeq = e.seq;
      }
      if (store.events.length > MAX_EVENTS)
        store.events.splice(0, store.events.length - MAX_EVENTS);
      break;
  }
}

function connect() {
  const conn = document.getElementById('conn');
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onopen = () => {
    conn.textContent = 'live';
    conn.className = 'conn live';
  };
  ws.onmessage = (msg) => {
    apply(JSON.parse(msg.data));
    render();
  };
  ws.onclose = () => {
    conn.textContent = 'disconnected — retrying';
    conn.className = 'conn';
    // The worker may be restarting (hot reload); try again shortly.
    window.setTimeout(connect, 1000);
  };
}

for (const button of document.querySelectorAll('button.zoom')) {
  button.addEventListener('click', () => {
    const box = document.getElementById(button.dataset.target);
    box.classList.toggle('fit');
    button.textContent = box.classList.contains('fit') ? '1:1' : 'fit';
  });
}
initTimeline(store, render);
connect();
