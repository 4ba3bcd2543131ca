/**
 * Lays a chart out with elkjs (layered, compound-aware) into plain positioned boxes and edge
 * polylines. Runs in Node, so the live page and the checked-in diagrams share one layout and
 * one renderer, and the browser needs neither elkjs nor a layout step.
 */
import elkModule from 'elkjs/lib/elk.bundled.js';
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api.js';
import type { ChartEdge, ChartModel, ChartNode } from './chart-model.ts';
import { LINE_HEIGHT, TITLE_HEIGHT, textWidth, wrapWords } from './text-metrics.ts';

export interface PlacedState {
  node: ChartNode;
  x: number;
  y: number;
  width: number;
  height: number;
  /** Whether its parent is a parallel state (it is a region, drawn dashed). */
  region: boolean;
  /** `invoke: …` line, if any. */
  invokeLine: string | undefined;
  /** Targetless transitions handled here, wrapped into lines of event chips. */
  internalLines: ChartEdge[][];
}

export interface PlacedEdge {
  edge: ChartEdge;
  target: string;
  points: { x: number; y: number }[];
  label: { x: number; y: number; width: number; height: number } | undefined;
}

export interface ChartLayout {
  model: ChartModel;
  width: number;
  height: number;
  states: PlacedState[];
  edges: PlacedEdge[];
}

// A CommonJS module typed as ESM: under NodeNext the default import is `module.exports`,
// which is the constructor and also carries itself as `.default`.
const ELK = elkModule.default;

const PAD_X = 12;
const MIN_LEAF_WIDTH = 96;
const INTERNAL_WRAP = 300;
const LABEL_GAP = 4;

/**
 * Transitions drawn as chips inside their state rather than as arrows: actions-only ones, and
 * those into the state's own descendants (`FORCE_STOP_REQUESTED → stopped` on `lifecycle`),
 * which mean "from anywhere in here" and would otherwise cross the whole region.
 */
export function isInternal(e: ChartEdge): boolean {
  return e.targets.every((t) => t.startsWith(`${e.source}.`));
}

/** A chip's text: the event, and where it leads when it leads somewhere. */
export function chipLabel(e: ChartEdge): string {
  const to = e.targets.map((t) => t.slice(e.source.length + 1));
  return to.length ? `${e.label} → ${to.join(', ')}` : e.label;
}

/** The text of an edge label: the event, then the guard in brackets on its own line. */
export function edgeLabelLines(edge: ChartEdge): string[] {
  return edge.guard ? [edge.label, `[${edge.guard}]`] : [edge.label];
}

export async function layoutChart(model: ChartModel): Promise<ChartLayout> {
  const internal = new Map<string, ChartEdge[]>();
  for (const e of model.edges) {
    if (!isInternal(e)) continue;
    const list = internal.get(e.source) ?? [];
    // One chip per event: guarded alternatives of the same event share it.
    if (!list.some((x) => chipLabel(x) === chipLabel(e))) list.push(e);
    internal.set(e.source, list);
  }
  const info = new Map<string, Omit<PlacedState, 'x' | 'y' | 'width' | 'height'>>();

  const toElk = (node: ChartNode, parallelParent: boolean): ElkNode => {
    const invokeLine = node.invokes.length ? `invoke: ${node.invokes.join(', ')}` : undefined;
    const internalLines = wrapWords(internal.get(node.id) ?? [], chipLabel, INTERNAL_WRAP);
    info.set(node.id, { node, region: parallelParent, invokeLine, internalLines });
    const header =
      TITLE_HEIGHT + (invokeLine ? LINE_HEIGHT : 0) + internalLines.length * LINE_HEIGHT;
    const lineWidths = [
      textWidth(node.key, 13, true) + 22,
      invokeLine ? textWidth(invokeLine, 11) : 0,
      ...internalLines.map(
        (l) => l.reduce((w, e) => w + textWidth(chipLabel(e), 10.5) + 10, 0) + textWidth('on ', 11),
      ),
    ];
    if (node.children.length === 0) {
      return {
        id: node.id,
        width: Math.max(MIN_LEAF_WIDTH, ...lineWidths) + 2 * PAD_X,
        height: header + 10,
      };
    }
    return {
      id: node.id,
      layoutOptions: {
        'elk.padding': `[top=${header + 12},left=16,bottom=16,right=16]`,
        'elk.direction': 'DOWN',
        'elk.nodeSize.constraints': 'MINIMUM_SIZE',
        'elk.nodeSize.minimum': `(${Math.max(...lineWidths) + 2 * PAD_X}, ${header + 40})`,
      },
      children: node.children.map((c) => toElk(c, node.type === 'parallel')),
    };
  };

  const root = toElk(model.root, false);
  root.layoutOptions = {
    ...root.layoutOptions,
    'elk.algorithm': 'layered',
    'elk.direction': 'DOWN',
    'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
    'elk.json.edgeCoords': 'ROOT',
    'elk.json.shapeCoords': 'ROOT',
    'elk.edgeRouting': 'ORTHOGONAL',
    'elk.layered.spacing.nodeNodeBetweenLayers': '46',
    'elk.layered.spacing.edgeNodeBetweenLayers': '18',
    'elk.spacing.nodeNode': '34',
    'elk.spacing.edgeEdge': '14',
    'elk.spacing.edgeLabel': '4',
    'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
    'elk.edgeLabels.placement': 'CENTER',
    'elk.randomSeed': '1',
  };
  const edgeRefs = new Map<string, { edge: ChartEdge; target: string }>();
  root.edges = model.edges
    .filter((e) => !isInternal(e))
    .flatMap((edge) =>
      edge.targets.map((target, j): ElkExtendedEdge => {
        const id = `${edge.id}>${j}`;
        edgeRefs.set(id, { edge, target });
        const lines = edgeLabelLines(edge);
        return {
          id,
          sources: [edge.source],
          targets: [target],
          labels: [
            {
              text: lines.join('\n'),
              width: Math.max(...lines.map((l, i) => textWidth(l, i ? 10 : 11))) + 2 * LABEL_GAP,
              height: lines.length * 13 + LABEL_GAP,
            },
          ],
        };
      }),
    );

  // Regions of a parallel state are stacked by invisible edges: side by side, the worker chart
  // is too wide for a browser column or a README.
  const stackRegions = (node: ChartNode): ElkExtendedEdge[] => [
    ...(node.type === 'parallel'
      ? node.children.slice(1).map((c, i) => ({
          id: `stack:${node.children[i]!.id}`,
          sources: [node.children[i]!.id],
          targets: [c.id],
        }))
      : []),
    ...node.children.flatMap(stackRegions),
  ];
  root.edges.push(...stackRegions(model.root));

  const laid = await new ELK().layout(root);

  const states: PlacedState[] = [];
  const collect = (n: ElkNode): void => {
    const meta = info.get(n.id);
    if (meta) {
      states.push({
        ...meta,
        x: n.x ?? 0,
        y: n.y ?? 0,
        width: n.width ?? 0,
        height: n.height ?? 0,
      });
    }
    (n.children ?? []).forEach(collect);
  };
  collect(laid);

  const edges: PlacedEdge[] = [];
  const collectEdges = (n: ElkNode): void => {
    for (const e of n.edges ?? []) {
      const ref = edgeRefs.get(e.id);
      if (!ref) continue;
      const points = (e.sections ?? []).flatMap((s) => [
        s.startPoint,
        ...(s.bendPoints ?? []),
        s.endPoint,
      ]);
      const l = e.labels?.[0];
      edges.push({
        ...ref,
        points,
        label:
          l && l.x !== undefined && l.y !== undefined
            ? { x: l.x, y: l.y, width: l.width ?? 0, height: l.height ?? 0 }
            : undefined,
      });
    }
    (n.children ?? []).forEach(collectEdges);
  };
  collectEdges(laid);

  return { model, width: laid.width ?? 0, height: laid.height ?? 0, states, edges };
}
