/**
 * Draws a laid-out chart as a self-contained SVG string. The same markup is checked into
 * `visualizations/` and shown live by the inspector, which highlights it by toggling classes:
 * every state carries `data-state="<id>"`, every transition `data-edge="<key>"` (see
 * `transitionKey`), so no second renderer can drift from the first.
 */
import type { ChartEdge } from './chart-model.ts';
import {
  chipLabel,
  edgeLabelLines,
  isInternal,
  type ChartLayout,
  type PlacedEdge,
  type PlacedState,
} from './chart-layout.ts';
import { LINE_HEIGHT, TITLE_HEIGHT, textWidth } from './text-metrics.ts';

const MARGIN = 16;

const STYLE = `
.sc { font-family: Inter, ui-sans-serif, system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; }
.sc .bg { fill: #ffffff; }
.sc .state > rect.box { fill: #ffffff; stroke: #cbd5e1; stroke-width: 1.25; }
.sc .state.compound > rect.box, .sc .state.parallel > rect.box { fill: #f8fafc; }
.sc .state.region > rect.box { fill: #fbfcfe; stroke-dasharray: 6 4; }
.sc .state > rect.inner { fill: none; stroke: #cbd5e1; stroke-width: 1; }
.sc .title { fill: #0f172a; font-size: 13px; font-weight: 600; }
.sc .invoke { fill: #64748b; font-size: 11px; }
.sc .on { fill: #94a3b8; font-size: 11px; }
.sc .initial { fill: #334155; }
.sc .chip rect { fill: #f1f5f9; }
.sc .chip text { fill: #475569; font-size: 10.5px; }
.sc .edge path { fill: none; stroke: #94a3b8; stroke-width: 1.3; }
.sc .edge .head { fill: #94a3b8; }
.sc .edge .label-bg { fill: #ffffff; fill-opacity: 0.92; }
.sc .edge .event { fill: #334155; font-size: 11px; }
.sc .edge .guard { fill: #64748b; font-size: 10px; font-style: italic; }
.sc .edge.always path { stroke: #8b5cf6; stroke-dasharray: 5 4; }
.sc .edge.always .head { fill: #8b5cf6; }
.sc .edge.always .event { fill: #6d28d9; }
.sc .edge.after path { stroke: #38bdf8; }
.sc .edge.after .head { fill: #38bdf8; }
.sc .edge.after .event { fill: #0369a1; }
.sc .state.active > rect.box { fill: #ecfdf5; stroke: #10b981; stroke-width: 2.2; }
.sc .state.active.compound > rect.box, .sc .state.active.parallel > rect.box { fill: #f3fdf8; stroke-width: 1.8; }
.sc .state.active > .title { fill: #065f46; }
.sc .edge.hot path { stroke: #f59e0b; stroke-width: 2.6; stroke-dasharray: none; }
.sc .edge.hot .head { fill: #f59e0b; }
.sc .edge.hot .event { fill: #b45309; font-weight: 700; }
.sc .chip.hot rect { fill: #fde68a; }
.sc .chip.hot text { fill: #92400e; font-weight: 700; }
`;

export function renderChartSvg(layout: ChartLayout): string {
  const width = Math.ceil(layout.width + 2 * MARGIN);
  const height = Math.ceil(layout.height + 2 * MARGIN);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="sc" data-machine="${esc(layout.model.machineId)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<style>${STYLE}</style>`,
    `<rect class="bg" width="${width}" height="${height}"/>`,
    `<g transform="translate(${MARGIN},${MARGIN})">`,
  ];
  for (const s of layout.states) out.push(renderState(s, layout.model.edges));
  for (const e of layout.edges) out.push(renderEdge(e));
  out.push('</g></svg>');
  return out.join('\n') + '\n';
}

function renderState(s: PlacedState, edges: readonly ChartEdge[]): string {
  const { node } = s;
  const classes = ['state', node.type, s.region ? 'region' : ''].filter(Boolean).join(' ');
  const parts = [
    `<g class="${classes}" data-state="${esc(node.id)}">`,
    `<rect class="box" x="${n(s.x)}" y="${n(s.y)}" width="${n(s.width)}" height="${n(s.height)}" rx="${s.region ? 10 : 8}"/>`,
  ];
  if (node.type === 'final') {
    parts.push(
      `<rect class="inner" x="${n(s.x + 3)}" y="${n(s.y + 3)}" width="${n(s.width - 6)}" height="${n(s.height - 6)}" rx="6"/>`,
    );
  }
  let tx = s.x + 12;
  if (node.initial) {
    parts.push(`<circle class="initial" cx="${n(s.x + 14)}" cy="${n(s.y + 13)}" r="3.5"/>`);
    tx += 10;
  }
  parts.push(`<text class="title" x="${n(tx)}" y="${n(s.y + 18)}">${esc(node.key)}</text>`);
  let y = s.y + TITLE_HEIGHT;
  if (s.invokeLine) {
    parts.push(
      `<text class="invoke" x="${n(s.x + 12)}" y="${n(y + 8)}">${esc(s.invokeLine)}</text>`,
    );
    y += LINE_HEIGHT;
  }
  for (const line of s.internalLines) {
    parts.push(`<text class="on" x="${n(s.x + 12)}" y="${n(y + 8)}">on</text>`);
    let x = s.x + 12 + textWidth('on ', 11);
    for (const e of line) {
      // Every guarded alternative of this event lights the same chip.
      const label = chipLabel(e);
      const keys = edges
        .filter((o) => o.source === e.source && isInternal(o) && chipLabel(o) === label)
        .map((o) => o.id)
        .join(' ');
      const w = textWidth(label, 10.5) + 8;
      parts.push(
        `<g class="chip" data-edge="${esc(keys)}"><rect x="${n(x)}" y="${n(y - 3)}" width="${n(w)}" height="14" rx="4"/><text x="${n(x + 4)}" y="${n(y + 8)}">${esc(label)}</text></g>`,
      );
      x += w + 2;
    }
    y += LINE_HEIGHT;
  }
  parts.push('</g>');
  return parts.join('');
}

function renderEdge(e: PlacedEdge): string {
  const kind =
    e.edge.eventType === ''
      ? 'always'
      : e.edge.eventType.startsWith('xstate.after.')
        ? 'after'
        : '';
  const cls = ['edge', kind].filter(Boolean).join(' ');
  const parts = [`<g class="${cls}" data-edge="${esc(e.edge.id)}">`];
  if (e.points.length >= 2) {
    parts.push(`<path d="M${e.points.map((p) => `${n(p.x)},${n(p.y)}`).join(' L')}"/>`);
    parts.push(arrowHead(e.points[e.points.length - 2]!, e.points[e.points.length - 1]!));
  }
  if (e.label) {
    const lines = edgeLabelLines(e.edge);
    const { x, y, width, height } = e.label;
    parts.push(
      `<rect class="label-bg" x="${n(x)}" y="${n(y)}" width="${n(width)}" height="${n(height)}" rx="3"/>`,
    );
    lines.forEach((line, i) => {
      parts.push(
        `<text class="${i ? 'guard' : 'event'}" x="${n(x + 4)}" y="${n(y + 12 + i * 13)}">${esc(line)}</text>`,
      );
    });
  }
  parts.push('</g>');
  return parts.join('');
}

/** A filled triangle at `to`, pointing along the last segment (CSS can recolour it). */
function arrowHead(from: { x: number; y: number }, to: { x: number; y: number }): string {
  const len = Math.hypot(to.x - from.x, to.y - from.y) || 1;
  const ux = (to.x - from.x) / len;
  const uy = (to.y - from.y) / len;
  const size = 7;
  const bx = to.x - ux * size;
  const by = to.y - uy * size;
  const px = -uy * (size / 2);
  const py = ux * (size / 2);
  return `<path class="head" d="M${n(to.x)},${n(to.y)} L${n(bx + px)},${n(by + py)} L${n(bx - px)},${n(by - py)} Z"/>`;
}

/** Rounded coordinates keep the files small and their diffs stable. */
const n = (v: number): string => String(Math.round(v * 10) / 10);

function esc(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}
