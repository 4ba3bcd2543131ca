/**
 * Turns XState's inspection stream into the inspector's picture of the system: which actors
 * exist, the latest snapshot of each, the transitions just taken, and a bounded event
 * timeline. The `inspect` callback runs synchronously inside the actors' loop, so it only
 * records references; serializing, redacting and layout happen later and only while a page
 * is watching (`flush`, `picture`).
 */
import type { AnyStateMachine, InspectionEvent } from 'xstate';
import { keyOfTakenTransition, serializeMachine } from './chart-model.ts';
import { layoutChart } from './chart-layout.ts';
import { renderChartSvg } from './chart-svg.ts';
import type { ActorInfo, EventRecord, InspectorMessage, SnapshotInfo } from './messages.ts';
import { CONTEXT_LIMITS, EVENT_LIMITS, safeJson } from './safe-json.ts';

/** Ended actors kept visible (greyed out) before they are dropped from the picture. */
const KEEP_ENDED = 24;
const EVENT_HISTORY = 1000;
/** Events a late-joining page gets. */
const EVENT_REPLAY = 400;

interface RawSnapshot {
  status: string;
  value?: unknown;
  context?: unknown;
}

interface RawEvent {
  seq: number;
  at: number;
  target: string;
  source: string | undefined;
  event: { type: string };
}

interface ActorRefLike {
  sessionId: string;
  id: string;
  logic?: unknown;
  _parent?: { sessionId: string };
}

export interface InspectorFeed {
  inspect(ev: InspectionEvent): void;
  /** Messages that describe the system as it is now, for a page that just connected. */
  picture(): Promise<InspectorMessage[]>;
  /** Messages for what changed since the last call (snapshots, events, new actors and charts). */
  flush(): Promise<InspectorMessage[]>;
  /** Called (synchronously, at most once until the next flush) when something changed. */
  onChange(listener: () => void): void;
}

export function createInspectorFeed(options: { secrets?: readonly string[] } = {}): InspectorFeed {
  const secrets = options.secrets ?? [];
  const machines = new Map<string, AnyStateMachine>();
  const svgs = new Map<string, Promise<string>>();
  const actors = new Map<string, ActorInfo>();
  const snapshots = new Map<
    string,
    { raw: RawSnapshot; event: string; at: number; edges: string[] }
  >();
  /** Transition keys taken since the actor's last snapshot (one macrostep can take several). */
  const pendingEdges = new Map<string, string[]>();
  const ended: string[] = [];
  const events: RawEvent[] = [];
  let seq = 0;

  // Dirty sets: what the next flush must send.
  const newActors = new Set<string>();
  const gone = new Set<string>();
  const dirtySnapshots = new Set<string>();
  const newMachines = new Set<string>();
  let eventsSentUpTo = 0;
  let listener: (() => void) | undefined;
  let notified = false;
  const changed = (): void => {
    if (notified || !listener) return;
    notified = true;
    listener();
  };

  const chartSvg = (machineId: string): Promise<string> | undefined => {
    const machine = machines.get(machineId);
    if (!machine) return undefined;
    let svg = svgs.get(machineId);
    if (!svg) {
      svg = layoutChart(serializeMachine(machine)).then(renderChartSvg);
      svgs.set(machineId, svg);
    }
    return svg;
  };

  const snapshotInfo = (sessionId: string): SnapshotInfo | undefined => {
    const s = snapshots.get(sessionId);
    const actor = actors.get(sessionId);
    if (!s || !actor) return undefined;
    return {
      sessionId,
      status: s.raw.status,
      value: actor.machineId ? safeJson(s.raw.value, EVENT_LIMITS) : undefined,
      active: actor.machineId ? activeStateIds(actor.machineId, s.raw.value) : [],
      edges: s.edges,
      event: s.event,
      context: safeJson(s.raw.context, CONTEXT_LIMITS, secrets),
      at: s.at,
    };
  };

  const eventRecord = (e: RawEvent): EventRecord => ({
    seq: e.seq,
    at: e.at,
    target: e.target,
    source: e.source,
    type: e.event.type,
    payload: safeJson(withoutType(e.event), EVENT_LIMITS, secrets),
  });

  const forgetEnded = (sessionId: string): void => {
    ended.push(sessionId);
    while (ended.length > KEEP_ENDED) {
      const old = ended.shift()!;
      actors.delete(old);
      snapshots.delete(old);
      pendingEdges.delete(old);
      newActors.delete(old);
      dirtySnapshots.delete(old);
      gone.add(old);
    }
  };

  return {
    inspect(ev) {
      const ref = ev.actorRef as unknown as ActorRefLike;
      switch (ev.type) {
        case '@xstate.actor': {
          const logic = ref.logic;
          const machine = isMachine(logic) ? logic : undefined;
          if (machine && !machines.has(machine.id)) {
            machines.set(machine.id, machine);
            newMachines.add(machine.id);
          }
          actors.set(ref.sessionId, {
            sessionId: ref.sessionId,
            id: ref.id,
            parentId: ref._parent?.sessionId,
            machineId: machine?.id,
            createdAt: Date.now(),
          });
          newActors.add(ref.sessionId);
          break;
        }
        case '@xstate.microstep': {
          const taken = (
            ev as unknown as { _transitions: Parameters<typeof keyOfTakenTransition>[0][] }
          )._transitions;
          const list = pendingEdges.get(ref.sessionId) ?? [];
          for (const t of taken) list.push(keyOfTakenTransition(t));
          pendingEdges.set(ref.sessionId, list);
          return;
        }
        case '@xstate.snapshot': {
          const raw = ev.snapshot as RawSnapshot;
          const previous = snapshots.get(ref.sessionId);
          const taken = pendingEdges.get(ref.sessionId);
          pendingEdges.delete(ref.sessionId);
          snapshots.set(ref.sessionId, {
            raw,
            event: ev.event.type,
            at: Date.now(),
            // An event that changed nothing keeps the last transition lit.
            edges: taken?.length ? taken : (previous?.edges ?? []),
          });
          dirtySnapshots.add(ref.sessionId);
          if (raw.status !== 'active' && previous?.raw.status === 'active') {
            forgetEnded(ref.sessionId);
          }
          break;
        }
        case '@xstate.event': {
          const source = (ev.sourceRef as unknown as ActorRefLike | undefined)?.sessionId;
          events.push({
            seq: ++seq,
            at: Date.now(),
            target: ref.sessionId,
            source,
            event: ev.event,
          });
          if (events.length > EVENT_HISTORY) events.splice(0, events.length - EVENT_HISTORY);
          break;
        }
        default:
          return;
      }
      changed();
    },

    async picture() {
      const out: InspectorMessage[] = [];
      for (const machineId of machines.keys()) {
        out.push({ t: 'chart', machineId, svg: await chartSvg(machineId)! });
      }
      for (const actor of actors.values()) out.push({ t: 'actor', actor });
      for (const sessionId of snapshots.keys()) {
        const s = snapshotInfo(sessionId);
        if (s) out.push({ t: 'snapshot', snapshot: s });
      }
      out.push({ t: 'events', events: events.slice(-EVENT_REPLAY).map(eventRecord) });
      return out;
    },

    async flush() {
      notified = false;
      const out: InspectorMessage[] = [];
      // Charts first: a page draws an actor's chart as soon as it learns of the actor.
      for (const machineId of [...newMachines]) {
        newMachines.delete(machineId);
        out.push({ t: 'chart', machineId, svg: await chartSvg(machineId)! });
      }
      for (const sessionId of newActors) {
        const actor = actors.get(sessionId);
        if (actor) out.push({ t: 'actor', actor });
      }
      newActors.clear();
      for (const sessionId of dirtySnapshots) {
        const s = snapshotInfo(sessionId);
        if (s) out.push({ t: 'snapshot', snapshot: s });
      }
      dirtySnapshots.clear();
      const fresh = events.filter((e) => e.seq > eventsSentUpTo);
      if (fresh.length) out.push({ t: 'events', events: fresh.map(eventRecord) });
      eventsSentUpTo = seq;
      for (const sessionId of gone) out.push({ t: 'gone', sessionId });
      gone.clear();
      return out;
    },

    onChange(fn) {
      listener = fn;
    },
  };
}

function isMachine(logic: unknown): logic is AnyStateMachine {
  return typeof logic === 'object' && logic !== null && 'root' in logic && 'id' in logic;
}

function withoutType(event: { type: string }): Record<string, unknown> {
  const { type: _type, ...rest } = event as Record<string, unknown>;
  return rest;
}

/** Active state ids from a state value: `{ a: { b: 'c' } }` → `m`, `m.a`, `m.a.b`, `m.a.b.c`. */
export function activeStateIds(machineId: string, value: unknown): string[] {
  const out = [machineId];
  const walk = (prefix: string, v: unknown): void => {
    if (typeof v === 'string') {
      out.push(`${prefix}.${v}`);
    } else if (v && typeof v === 'object') {
      for (const [k, sub] of Object.entries(v)) {
        out.push(`${prefix}.${k}`);
        walk(`${prefix}.${k}`, sub);
      }
    }
  };
  walk(machineId, value);
  return out;
}
