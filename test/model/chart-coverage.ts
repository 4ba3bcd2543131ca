/**
 * Chart coverage, observed on the real actors. The inventory of a chart (every state node and
 * every transition: `on`, invoke `onDone`/`onError`, `always`, `after`) is derived by walking
 * `machine.root`; a recorder plugged into an actor system's `inspect` option marks what the
 * running actors actually entered and took (`@xstate.microstep` carries the transitions). The
 * model is never trusted for this.
 *
 * Each test file writes its observations to `test-artifacts/chart-coverage/<suite>.json`; the
 * merged report (`test-artifacts/chart-coverage.json` and `.md`) is rebuilt from all of them.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AnyStateMachine, InspectionEvent } from 'xstate';

/** A state node as the walk sees it (the subset of xstate's `StateNode` used here). */
interface WalkNode {
  id: string;
  key: string;
  type: string;
  states: Record<string, WalkNode>;
  transitions: Map<string, WalkTransition[]>;
  always?: WalkTransition[];
  machine: { id: string };
}
interface WalkTransition {
  eventType: string;
  source: WalkNode;
  target?: readonly WalkNode[] | undefined;
  delay?: unknown;
  guard?: unknown;
}

export interface ChartInventory {
  chart: string;
  /** State paths relative to the machine, e.g. `lifecycle.registered.available`; `(machine)` is the root. */
  states: string[];
  /** One key per transition definition; guarded alternatives are numbered. */
  transitions: string[];
}

const ROOT = '(machine)';

function relPath(node: WalkNode): string {
  const prefix = `${node.machine.id}.`;
  return node.id === node.machine.id
    ? ROOT
    : node.id.startsWith(prefix)
      ? node.id.slice(prefix.length)
      : node.id;
}

function targetLabel(t: WalkTransition): string {
  if (!t.target || t.target.length === 0) return '(stay)';
  return t.target.map((n) => relPath(n)).join(',');
}

function eventLabel(t: WalkTransition): string {
  if (t.eventType.startsWith('xstate.after.')) return `after ${String(t.delay)}`;
  return t.eventType;
}

/** `lifecycle.connecting: REGISTERED#0 → lifecycle.registered` */
function transitionKey(t: WalkTransition, kind: 'on' | 'always', index: number): string {
  const ev = kind === 'always' ? 'always' : eventLabel(t);
  return `${relPath(t.source)}: ${ev}#${index} → ${targetLabel(t)}`;
}

function keyOf(t: WalkTransition): string {
  const always = t.source.always ?? [];
  const ai = always.indexOf(t);
  if (ai >= 0 || t.eventType === '') return transitionKey(t, 'always', Math.max(ai, 0));
  const list = t.source.transitions.get(t.eventType) ?? [];
  return transitionKey(t, 'on', Math.max(list.indexOf(t), 0));
}

export function inventory(machine: AnyStateMachine): ChartInventory {
  const states: string[] = [];
  const transitions: string[] = [];
  const walk = (node: WalkNode) => {
    states.push(relPath(node));
    for (const list of node.transitions.values()) {
      list.forEach((t, i) => transitions.push(transitionKey(t, 'on', i)));
    }
    (node.always ?? []).forEach((t, i) => transitions.push(transitionKey(t, 'always', i)));
    for (const child of Object.values(node.states)) walk(child);
  };
  walk(machine.root);
  return { chart: machine.id, states, transitions };
}

function flattenValue(value: unknown, prefix: string, out: string[]): void {
  if (typeof value === 'string') {
    out.push(prefix ? `${prefix}.${value}` : value);
    return;
  }
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const p = prefix ? `${prefix}.${k}` : k;
      out.push(p);
      flattenValue(v, p, out);
    }
  }
}

/** What one suite saw: per chart, per state/transition key, the labels of the paths that hit it. */
export type Observed = Record<
  string,
  { states: Record<string, string[]>; transitions: Record<string, string[]> }
>;

/**
 * Records states entered and transitions taken by every machine actor in the systems it is
 * plugged into. `label` names what is being run (a path description), so the report can say
 * which paths covered what.
 */
export class CoverageRecorder {
  readonly observed: Observed = {};
  #label = '(unlabelled)';
  readonly #charts: ReadonlySet<string>;

  constructor(charts: readonly string[]) {
    this.#charts = new Set(charts);
  }

  /** Names the path now running; later observations are credited to it. */
  label(l: string): void {
    this.#label = l;
  }

  /** Pass as `createActor(m, { inspect: recorder.inspect })` (or a Worker's `inspect`). */
  readonly inspect = (ev: InspectionEvent): void => {
    const snapshot = (ev as { snapshot?: { machine?: AnyStateMachine; value?: unknown } }).snapshot;
    const machine = snapshot?.machine;
    if (!machine || !this.#charts.has(machine.id)) return;
    const chart = this.#chart(machine.id);
    if (ev.type === '@xstate.microstep' || ev.type === '@xstate.snapshot') {
      const paths: string[] = [ROOT];
      flattenValue(snapshot.value, '', paths);
      for (const p of paths) this.#credit(chart.states, p);
    }
    if (ev.type === '@xstate.microstep') {
      const taken = (ev as unknown as { _transitions: WalkTransition[] })._transitions;
      for (const t of taken) this.#credit(chart.transitions, keyOf(t));
    }
  };

  #chart(id: string) {
    return (this.observed[id] ??= { states: {}, transitions: {} });
  }

  #credit(bucket: Record<string, string[]>, key: string) {
    const labels = (bucket[key] ??= []);
    if (labels.at(-1) !== this.#label && !labels.includes(this.#label)) labels.push(this.#label);
  }
}

/**
 * Transitions no stimulus can take, each with the reason (defensive branches). They are listed
 * in the report as such, and a check fails if one is ever taken or disappears from the chart,
 * so the list cannot go stale.
 */
export type Unreachable = Record<string, Record<string, string>>;

export interface ChartCoverage {
  chart: string;
  /** Justified-unreachable transitions (not counted as covered, not counted as missing). */
  unreachable: { transition: string; why: string; taken: boolean; exists: boolean }[];
  states: { total: number; covered: number; uncovered: string[] };
  transitions: { total: number; covered: number; uncovered: string[] };
  /** Also reported: observed keys the inventory does not know (should be empty). */
  unknown: string[];
}

export function coverageOf(
  inv: ChartInventory,
  observed: Observed,
  unreachable: Unreachable = {},
): ChartCoverage {
  const o = observed[inv.chart] ?? { states: {}, transitions: {} };
  const justified = unreachable[inv.chart] ?? {};
  const us = inv.states.filter((s) => !o.states[s]?.length);
  const ut = inv.transitions.filter((t) => !o.transitions[t]?.length && !(t in justified));
  const known = new Set([...inv.states, ...inv.transitions]);
  const unknown = [...Object.keys(o.states), ...Object.keys(o.transitions)].filter(
    (k) => !known.has(k),
  );
  return {
    chart: inv.chart,
    unreachable: Object.entries(justified).map(([transition, why]) => ({
      transition,
      why,
      taken: Boolean(o.transitions[transition]?.length),
      exists: inv.transitions.includes(transition),
    })),
    states: { total: inv.states.length, covered: inv.states.length - us.length, uncovered: us },
    transitions: {
      total: inv.transitions.length,
      covered: inv.transitions.filter((t) => o.transitions[t]?.length).length,
      uncovered: ut,
    },
    unknown,
  };
}

export function summaryLine(c: ChartCoverage): string {
  const j = c.unreachable.length ? ` (+${c.unreachable.length} justified unreachable)` : '';
  return `${c.chart}: states ${c.states.covered}/${c.states.total}, transitions ${c.transitions.covered}/${c.transitions.total}${j}`;
}

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');
const PARTS = join(ARTIFACTS, 'chart-coverage');

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/**
 * Saves this suite's observations and rebuilds the merged report from every suite's part.
 * Returns the merged coverage per chart (of the charts given).
 */
export function writeCoverageReport(
  suite: string,
  machines: readonly AnyStateMachine[],
  observed: Observed,
  unreachable: Unreachable = {},
): ChartCoverage[] {
  mkdirSync(PARTS, { recursive: true });
  writeAtomically(join(PARTS, `${suite}.json`), JSON.stringify({ suite, observed }, null, 1));

  const parts: { suite: string; observed: Observed }[] = [];
  for (const f of readdirSync(PARTS).filter((n) => n.endsWith('.json'))) {
    try {
      parts.push(JSON.parse(readFileSync(join(PARTS, f), 'utf8')) as (typeof parts)[number]);
    } catch {
      // A part being rewritten by a concurrent suite: the next writer includes it.
    }
  }
  const merged: Observed = {};
  for (const part of parts) {
    for (const [chart, o] of Object.entries(part.observed)) {
      const m = (merged[chart] ??= { states: {}, transitions: {} });
      for (const kind of ['states', 'transitions'] as const) {
        for (const [k, labels] of Object.entries(o[kind])) {
          (m[kind][k] ??= []).push(...labels.map((l) => `${part.suite}: ${l}`));
        }
      }
    }
  }
  const charts = machines.map((m) => inventory(m));
  const coverage = charts.map((inv) => coverageOf(inv, merged, unreachable));
  const json = {
    generatedBy: suite,
    suites: parts.map((p) => p.suite).sort(),
    charts: charts.map((inv, i) => ({
      ...coverage[i],
      states: inv.states.map((s) => ({ state: s, coveredBy: merged[inv.chart]?.states[s] ?? [] })),
      transitions: inv.transitions.map((t) => ({
        transition: t,
        coveredBy: merged[inv.chart]?.transitions[t] ?? [],
        ...(unreachable[inv.chart]?.[t] ? { unreachable: unreachable[inv.chart]?.[t] } : {}),
      })),
      summary: summaryLine(coverage[i]!),
    })),
  };
  writeAtomically(join(ARTIFACTS, 'chart-coverage.json'), JSON.stringify(json, null, 1));
  writeAtomically(
    join(ARTIFACTS, 'chart-coverage.md'),
    markdown(charts, coverage, merged, json.suites),
  );
  return coverage;
}

function markdown(
  charts: ChartInventory[],
  coverage: ChartCoverage[],
  merged: Observed,
  suites: string[],
): string {
  const lines = [
    '# Chart coverage',
    '',
    `Observed on the real actors (inspection microsteps) by: ${suites.join(', ')}.`,
    '',
  ];
  charts.forEach((inv, i) => {
    const c = coverage[i]!;
    const o = merged[inv.chart] ?? { states: {}, transitions: {} };
    lines.push(`## ${summaryLine(c)}`, '', '| state | paths |', '| --- | --- |');
    for (const s of inv.states) lines.push(`| \`${s}\` | ${cell(o.states[s])} |`);
    lines.push('', '| transition | paths |', '| --- | --- |');
    const why = Object.fromEntries(c.unreachable.map((u) => [u.transition, u.why]));
    for (const t of inv.transitions) {
      const text =
        o.transitions[t]?.length || !why[t] ? cell(o.transitions[t]) : `unreachable: ${why[t]}`;
      lines.push(`| \`${t}\` | ${text} |`);
    }
    lines.push('');
  });
  return lines.join('\n');
}

function cell(labels: string[] | undefined): string {
  if (!labels?.length) return '**UNCOVERED**';
  const shown = labels.slice(0, 3).map((l) => l.replaceAll('|', '/'));
  return `${labels.length}: ${shown.join('<br>')}${labels.length > 3 ? '<br>…' : ''}`;
}

/** The failure message for incomplete coverage, or `undefined` when every state and transition was seen. */
export function incompleteCoverage(c: ChartCoverage): string | undefined {
  const problems: string[] = [];
  if (c.states.uncovered.length)
    problems.push(`uncovered states: ${c.states.uncovered.join('; ')}`);
  if (c.transitions.uncovered.length)
    problems.push(`uncovered transitions: ${c.transitions.uncovered.join('; ')}`);
  if (c.unknown.length) problems.push(`observed keys not in the chart: ${c.unknown.join('; ')}`);
  for (const u of c.unreachable) {
    if (!u.exists) problems.push(`listed as unreachable but not in the chart: ${u.transition}`);
    if (u.taken) problems.push(`listed as unreachable but taken: ${u.transition}`);
  }
  return problems.length ? `${summaryLine(c)}\n${problems.join('\n')}` : undefined;
}
