/** bench/results/latest.json and latest.md. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Summary } from './stats.ts';
import { FRAMEWORKS, type Framework } from './workers.ts';

export type Value = Summary | { value: number; n?: number } | { unavailable: string };

export interface Figure {
  id: string;
  figure: string;
  unit: string;
  /** 'lower' or 'higher' is better. */
  better: 'lower' | 'higher';
  runs: number;
  frameworks: Record<Framework, Value>;
  /** ours / peer, on the median (or the value). */
  ratio: Partial<Record<Exclude<Framework, 'agentstate'>, number>>;
  note?: string;
}

export function central(v: Value | undefined): number | undefined {
  if (!v) return undefined;
  if ('median' in v) return v.median;
  if ('value' in v) return v.value;
  return undefined;
}

export function withRatios(f: Omit<Figure, 'ratio'>): Figure {
  const ours = central(f.frameworks.agentstate);
  const ratio: Figure['ratio'] = {};
  for (const peer of ['agents-js', 'livekit-agents'] as const) {
    const p = central(f.frameworks[peer]);
    if (ours !== undefined && p !== undefined && p !== 0)
      ratio[peer] = Math.round((ours / p) * 100) / 100;
  }
  return { ...f, ratio };
}

function cell(v: Value | undefined): string {
  if (!v) return '—';
  if ('median' in v) return `${v.median} / ${v.p95} / ${v.max}`;
  if ('value' in v) return String(v.value);
  return `n/a (${v.unavailable})`;
}

export interface Report {
  generatedAt: string;
  mode: 'quick' | 'full';
  /** `--only <scenario>`: the figures of that scenario alone. */
  only?: string;
  /** `--frameworks a,b`: the frameworks run (all when absent). */
  frameworks?: string[];
  durationSeconds: number;
  machine: Record<string, unknown>;
  versions: Record<string, unknown>;
  method: string[];
  figures: Figure[];
  raw: Record<string, unknown>;
}

export function writeReport(dir: string, report: Report): void {
  writeFileSync(join(dir, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  const lines = [
    `# Benchmarks: agentstate vs @livekit/agents (agents-js) vs livekit-agents (Python)`,
    '',
    `${report.generatedAt}, \`npm run bench${report.mode === 'quick' ? ' -- --quick' : ''}\`` +
      `${report.only ? `, only ${report.only}` : ''}` +
      `${report.frameworks ? `, frameworks ${report.frameworks.join(', ')}` : ''}, ` +
      `${report.durationSeconds} s, ${String(report.machine.cpus)} cores; ` +
      `${Object.entries(report.versions)
        .map(([k, v]) => `${k} ${String(v)}`)
        .join(', ')}.`,
    '',
    'Distributions are median / p95 / max. Ratio = agentstate ÷ peer (on the median); for figures ' +
      'where lower is better, a ratio below 1 means agentstate is ahead.',
    '',
    `| figure | unit | better | runs | ${FRAMEWORKS.join(' | ')} | ratio vs agents-js | ratio vs livekit-agents |`,
    `| --- | --- | --- | --- | ${FRAMEWORKS.map(() => '---').join(' | ')} | --- | --- |`,
  ];
  for (const f of report.figures) {
    lines.push(
      `| ${f.figure} | ${f.unit} | ${f.better} | ${f.runs} | ${FRAMEWORKS.map((fw) => cell(f.frameworks[fw])).join(' | ')} | ${f.ratio['agents-js'] ?? '—'} | ${f.ratio['livekit-agents'] ?? '—'} |`,
    );
  }
  lines.push('', '## Method and caveats', '', ...report.method.map((m) => `- ${m}`));
  const notes = report.figures.filter((f) => f.note);
  if (notes.length)
    lines.push('', '## Notes per figure', '', ...notes.map((f) => `- **${f.figure}**: ${f.note}`));
  writeFileSync(join(dir, 'latest.md'), lines.join('\n') + '\n');
}
