/**
 * A machine definition as a small, JSON-safe graph: the one input both the live page and the
 * checked-in diagrams are drawn from. XState's own `machine.definition` (and `toJSON`) drops
 * `always` transitions, so this walks the state nodes itself and reads `node.always` too.
 */
import type { AnyStateMachine, AnyStateNode } from 'xstate';

export type ChartNodeType = 'atomic' | 'compound' | 'parallel' | 'final' | 'history';

export interface ChartNode {
  /** The full state id, e.g. `worker.lifecycle.registered.available`. */
  id: string;
  key: string;
  type: ChartNodeType;
  /** Whether it is its parent's initial state (drawn with a marker). */
  initial: boolean;
  /** Invoked actor sources (`serverLink`, `processHost`). */
  invokes: string[];
  children: ChartNode[];
}

export interface ChartEdge {
  /**
   * `<source id>|<event type>|<index>`: the same key the live feed derives from a taken
   * transition, so the page can light up exactly this edge.
   */
  id: string;
  source: string;
  /** Empty for a targetless transition (actions only): drawn inside its state, not as an arrow. */
  targets: string[];
  /** The event type as XState names it (`''` for `always`). */
  eventType: string;
  /** What a reader sees: `REGISTERED`, `always`, `after REGISTER_TIMEOUT`, `done: lifecycle`. */
  label: string;
  guard: string | undefined;
}

export interface ChartModel {
  machineId: string;
  root: ChartNode;
  edges: ChartEdge[];
}

/** The key of a transition, shared by the serializer and the live feed. */
export function transitionKey(sourceId: string, eventType: string, index: number): string {
  return `${sourceId}|${eventType}|${index}`;
}

interface TransitionLike {
  eventType: string;
  source: AnyStateNode;
  target?: readonly AnyStateNode[] | undefined;
  guard?: unknown;
}

/** The key of a transition XState reports as taken (`@xstate.microstep`'s `_transitions`). */
export function keyOfTakenTransition(t: TransitionLike): string {
  const list: readonly unknown[] =
    t.eventType === '' ? (t.source.always ?? []) : (t.source.transitions.get(t.eventType) ?? []);
  return transitionKey(t.source.id, t.eventType, Math.max(0, list.indexOf(t)));
}

export function serializeMachine(machine: AnyStateMachine): ChartModel {
  const edges: ChartEdge[] = [];
  const walk = (node: AnyStateNode, initialId: string | undefined): ChartNode => {
    const groups: [string, readonly TransitionLike[]][] = [...node.transitions.entries()];
    if (node.always?.length) groups.push(['', node.always]);
    for (const [eventType, list] of groups) {
      list.forEach((t, i) => {
        edges.push({
          id: transitionKey(node.id, eventType, i),
          source: node.id,
          targets: (t.target ?? []).map((x) => x.id),
          eventType,
          label: eventLabel(eventType, node),
          guard: guardLabel(t.guard),
        });
      });
    }
    const childInitial = node.initial?.target?.[0]?.id;
    return {
      id: node.id,
      key: node.key,
      type: node.type,
      initial: node.id === initialId,
      invokes: node.invoke.map(srcName),
      children: Object.values(node.states).map((c) => walk(c, childInitial)),
    };
  };
  return { machineId: machine.id, root: walk(machine.root, undefined), edges };
}

/** Turns XState's internal event names into what a reader of the chart expects. */
export function eventLabel(eventType: string, node: AnyStateNode): string {
  if (eventType === '') return 'always';
  if (eventType.startsWith('xstate.after.')) {
    // `xstate.after.<delay>.<state id>`: the delay is a name or a number of ms.
    const delay = eventType.slice('xstate.after.'.length).split('.')[0] ?? '';
    return `after ${/^\d+$/.test(delay) ? `${delay} ms` : delay}`;
  }
  for (const inv of node.invoke) {
    if (eventType === `xstate.done.actor.${inv.id}`) return `done: ${srcName(inv)}`;
    if (eventType === `xstate.error.actor.${inv.id}`) return `error: ${srcName(inv)}`;
  }
  if (eventType.startsWith('xstate.done.state.')) {
    return `done: ${eventType.split('.').pop() ?? ''}`;
  }
  return eventType;
}

type GuardFn = ((...args: never[]) => unknown) & {
  guards?: unknown[];
  stateValue?: unknown;
};

/** Named guards by name; `and`/`or`/`not`/`stateIn` spelled out so the condition is readable. */
export function guardLabel(guard: unknown): string | undefined {
  if (guard === undefined || guard === null) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && 'type' in guard) {
    // Static params of a parameterized guard are part of its meaning: `exitIs(finished)`.
    const params = 'params' in guard ? guard.params : undefined;
    const values =
      params && typeof params === 'object'
        ? Object.values(params).filter((v) => ['string', 'number', 'boolean'].includes(typeof v))
        : [];
    return values.length ? `${String(guard.type)}(${values.join(', ')})` : String(guard.type);
  }
  if (typeof guard === 'function') {
    const g = guard as GuardFn;
    const parts = (g.guards ?? []).map((x) => guardLabel(x) ?? '?');
    switch (g.name) {
      case 'not':
        return `!${wrap(parts[0] ?? '?')}`;
      case 'and':
        return parts.map((p) => (p.includes('||') ? `(${p})` : p)).join(' && ');
      case 'or':
        return parts.join(' || ');
      case 'stateIn':
        return `in ${typeof g.stateValue === 'string' ? g.stateValue : JSON.stringify(g.stateValue)}`;
      default:
        return g.name || 'inline guard';
    }
  }
  return 'guard';
}

const wrap = (s: string): string => (/[ &|]/.test(s) ? `(${s})` : s);

/** Every state id in the chart, parents first. */
export function stateIds(node: ChartNode): string[] {
  return [node.id, ...node.children.flatMap(stateIds)];
}

/** An invoked actor's name; our charts only invoke named actors, an inline one has no name. */
function srcName(inv: { src: unknown }): string {
  return typeof inv.src === 'string' ? inv.src : 'inline actor';
}
