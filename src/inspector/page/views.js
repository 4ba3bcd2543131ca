/* global document, CSS, window */
/**
 * Header, capacity card, actor tree and the two live charts. Data from the worker (room
 * names, metadata) only ever reaches the DOM through textContent; the only markup inserted is
 * the chart SVG the server renders from the machine definitions.
 */

const CHIP_FLASH_MS = 1500;

/** Every worker chart of the process: one, or one per agent of a `WorkerGroup`. */
export function rootActors(store) {
  return [...store.actors.values()].filter((a) => !a.parentId && a.machineId);
}

/** The worker being shown: the one picked in the agent tabs, else the first. */
export function rootActor(store) {
  const roots = rootActors(store);
  return roots.find((a) => a.sessionId === store.selectedRoot) ?? roots[0];
}

function workerContext(store) {
  const root = rootActor(store);
  return root ? store.snapshots.get(root.sessionId)?.context : undefined;
}

/** What a worker chart is called in the tabs: its agent name (or "automatic"). */
export function agentLabel(store, root) {
  const name = store.snapshots.get(root.sessionId)?.context?.options?.agentName;
  return name ? name : 'automatic';
}

/** One tab per agent when the process serves several; picking one shows its charts. */
export function renderAgents(store, onSelect) {
  const box = document.getElementById('agents');
  const roots = rootActors(store);
  if (roots.length < 2) {
    box.replaceChildren();
    return;
  }
  const shown = rootActor(store);
  box.replaceChildren(
    ...roots.map((root) => {
      const tab = document.createElement('button');
      const state = lifecycleState(store.snapshots.get(root.sessionId));
      tab.className = `agent-tab ${root.sessionId === shown?.sessionId ? 'selected' : ''}`;
      tab.dataset.agent = agentLabel(store, root);
      const name = document.createElement('span');
      name.textContent = agentLabel(store, root);
      const pill = document.createElement('span');
      pill.className = `pill ${state}`;
      pill.textContent = state;
      tab.append(name, pill);
      tab.addEventListener('click', () => onSelect(root.sessionId));
      return tab;
    }),
  );
}

/** `{ lifecycle: { registered: 'available' }, processes: 'warming' }` → `registered.available ‖ warming` */
export function flatValue(value) {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  const parts = Object.entries(value).map(([k, v]) =>
    typeof v === 'string' ? `${k}.${v}` : `${k}.${flatValue(v)}`,
  );
  return parts.join(' ‖ ');
}

function lifecycleState(snapshot) {
  const life = snapshot?.value?.lifecycle;
  if (!life) return snapshot?.status === 'active' ? '—' : (snapshot?.status ?? '—');
  if (typeof life === 'string') return life;
  if (life.registered) return life.registered;
  return Object.keys(life)[0];
}

function text(el, value) {
  if (el.textContent !== value) el.textContent = value;
}

export function renderHeader(store) {
  const root = rootActor(store);
  const snap = root && store.snapshots.get(root.sessionId);
  const state = lifecycleState(snap);
  const pill = document.getElementById('worker-status');
  text(pill, state);
  pill.className = `pill ${state}`;
  const ctx = snap?.context;
  const meta = [
    ctx?.workerId ? `worker ${ctx.workerId}` : 'not registered',
    store.hello ? `pid ${store.hello.pid}` : '',
    ctx?.serverUrl ?? '',
  ].filter(Boolean);
  text(document.getElementById('worker-meta'), meta.join('  ·  '));
}

export function renderCapacity(store) {
  const ctx = workerContext(store);
  if (!ctx) return;
  const load = Number(ctx.load ?? 0);
  const threshold = Number(ctx.options?.loadThreshold ?? 1);
  const maxJobs = ctx.options?.maxJobs;
  const jobs = Object.keys(ctx.jobs ?? {}).length;
  const procs = Object.values(ctx.procs ?? {});
  text(document.getElementById('load-value'), load.toFixed(2));
  const fill = document.getElementById('load-fill');
  fill.style.width = `${Math.min(100, load * 100)}%`;
  fill.classList.toggle('over', load >= threshold);
  document.getElementById('load-threshold').style.left = `${Math.min(100, threshold * 100)}%`;
  text(
    document.getElementById('load-caption'),
    `threshold ${threshold.toFixed(2)} — ${load >= threshold ? 'at or above: reports full' : 'below: can take jobs'}`,
  );
  text(document.getElementById('stat-jobs'), String(jobs));
  const unlimited = typeof maxJobs !== 'number';
  text(
    document.getElementById('stat-slots'),
    unlimited ? '∞' : String(Math.max(0, maxJobs - jobs)),
  );
  text(
    document.getElementById('stat-idle'),
    String(procs.filter((p) => p.phase === 'idle').length),
  );
}

/** What the worker knows about a process actor: pid, job and room. */
function procDetail(store, actor) {
  // The process's own worker: with several agents, not necessarily the one shown.
  const ctx = store.snapshots.get(actor.parentId)?.context ?? workerContext(store);
  const proc = ctx?.procs?.[actor.id];
  const own = store.snapshots.get(actor.sessionId)?.context;
  const pid = proc?.pid ?? own?.pid;
  const jobId = proc?.jobId ?? own?.job?.jobId ?? own?.job?.id;
  const room = jobId ? ctx?.jobs?.[jobId]?.job?.room?.name : undefined;
  // A job dispatched again by job recovery (src/recovery/) says so, with its attempt.
  const recovery = jobId
    ? (ctx?.jobs?.[jobId]?.acceptArguments?.recovery ?? own?.job?.acceptArguments?.recovery)
    : undefined;
  const recovered = recovery ? `recovered (attempt ${recovery.attempt})` : '';
  // The room first: it is what a developer recognises; job ids are long and get cut off.
  return [
    pid ? `pid ${pid}` : 'pid –',
    room ? `room ${room}` : '',
    recovered,
    jobId ? `job ${jobId}` : '',
  ]
    .filter(Boolean)
    .join(' · ');
}

export function renderActors(store, onSelect) {
  const box = document.getElementById('actors');
  const children = new Map();
  for (const a of store.actors.values()) {
    const list = children.get(a.parentId) ?? [];
    list.push(a);
    children.set(a.parentId, list);
  }
  const shown = shownProc(store);
  const rows = [];
  const walk = (actor, depth) => {
    const snap = store.snapshots.get(actor.sessionId);
    const ended = snap && snap.status !== 'active';
    const row = document.createElement('div');
    const isProc = actor.machineId === 'jobProcess';
    row.className = [
      'actor',
      actor.machineId ? 'machine' : 'minor',
      ended ? 'ended' : '',
      actor.sessionId === shown?.sessionId ? 'selected' : '',
    ].join(' ');
    row.style.paddingLeft = `${8 + depth * 14}px`;
    row.dataset.actor = actor.id;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent =
      !actor.parentId && rootActors(store).length > 1
        ? `${actor.id} · ${agentLabel(store, actor)}`
        : actor.id;
    const state = document.createElement('span');
    const value = actor.machineId ? flatValue(snap?.value) : (snap?.status ?? '');
    state.className = `state ${value.startsWith('running') ? 'running' : ''}`;
    state.textContent = value;
    row.append(name, state);
    if (isProc || !actor.parentId) {
      const detail = document.createElement('span');
      detail.className = 'detail';
      detail.textContent = isProc ? procDetail(store, actor) : value;
      row.append(detail);
      if (!actor.parentId) state.textContent = lifecycleState(snap);
    }
    if (isProc) {
      row.addEventListener('click', () => onSelect(actor.sessionId));
    }
    rows.push(row);
    // Callback/promise helpers (link, load sampler, process host) are noise next to charts.
    for (const c of children.get(actor.sessionId) ?? [])
      if (c.machineId || depth < 1) walk(c, depth + 1);
  };
  for (const a of children.get(undefined) ?? []) walk(a, 0);
  box.replaceChildren(...rows);
}

/**
 * The pinned process, else a running one, else the newest live one, else the newest — among
 * the shown worker's processes.
 */
export function shownProc(store) {
  const root = rootActor(store);
  const procs = [...store.actors.values()].filter(
    (a) => a.machineId === 'jobProcess' && (!root || a.parentId === root.sessionId),
  );
  const pinned = store.actors.get(store.pinnedProc);
  if (pinned) return pinned;
  const snap = (a) => store.snapshots.get(a.sessionId);
  const byNewest = procs.sort((a, b) => b.createdAt - a.createdAt);
  return (
    byNewest.find((a) => typeof snap(a)?.value === 'object' && 'running' in snap(a).value) ??
    byNewest.find((a) => snap(a)?.status === 'active') ??
    byNewest[0]
  );
}

const mounted = new Map(); // container id → { key, lastAt, hot }

function mountChart(containerId, store, actor) {
  const box = document.getElementById(containerId);
  const svg = actor && store.charts.get(actor.machineId);
  if (!svg) return undefined;
  let m = mounted.get(containerId);
  if (!m || m.key !== `${actor.sessionId}`) {
    box.innerHTML = svg;
    m = { key: actor.sessionId, lastAt: 0, hot: [] };
    mounted.set(containerId, m);
  }
  return { box, m };
}

function highlight(box, m, snap) {
  if (!snap || snap.at === m.lastAt) return;
  m.lastAt = snap.at;
  const active = new Set(snap.active);
  for (const g of box.querySelectorAll('[data-state]'))
    g.classList.toggle('active', active.has(g.dataset.state));
  const edges = snap.edges.flatMap((key) => [
    ...box.querySelectorAll(`[data-edge~="${CSS.escape(key)}"]`),
  ]);
  const arrows = edges.filter((el) => el.classList.contains('edge'));
  // Actions-only transitions (chips) flash; the last state change stays lit until the next one.
  if (arrows.length) {
    for (const el of m.hot) el.classList.remove('hot');
    m.hot = arrows;
    for (const el of arrows) el.classList.add('hot');
  }
  for (const chip of edges.filter((el) => el.classList.contains('chip'))) {
    chip.classList.add('hot');
    window.setTimeout(() => chip.classList.remove('hot'), CHIP_FLASH_MS);
  }
}

export function renderCharts(store) {
  const root = rootActor(store);
  const w = mountChart('worker-chart', store, root);
  if (w) highlight(w.box, w.m, store.snapshots.get(root.sessionId));

  const proc = shownProc(store);
  const title = document.getElementById('proc-chart-title');
  const workerTitle = document.getElementById('worker-chart-title');
  const roots = rootActors(store);
  text(workerTitle, root && roots.length > 1 ? `worker · ${agentLabel(store, root)}` : 'worker');
  if (!proc) return;
  const snap = store.snapshots.get(proc.sessionId);
  title.replaceChildren(`job process ${proc.id}`);
  const small = document.createElement('small');
  small.textContent = `${flatValue(snap?.value)} · ${procDetail(store, proc)}${store.pinnedProc ? ' · pinned' : ''}`;
  title.append(small);
  const p = mountChart('proc-chart', store, proc);
  if (p) highlight(p.box, p.m, snap);
}
