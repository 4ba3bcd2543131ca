/**
 * What the inspector server sends the page, one JSON object per WebSocket message. The page
 * (src/inspector/page/app.js) is the only reader; keep the two in step.
 */

export interface ActorInfo {
  sessionId: string;
  /** The actor's id in its parent (`proc-3`, `link`, `request-AJ_…`); `worker` for the root. */
  id: string;
  parentId: string | undefined;
  /** Set for state-machine actors: the chart to draw. */
  machineId: string | undefined;
  createdAt: number;
}

export interface SnapshotInfo {
  sessionId: string;
  /** `active`, `done`, `error` or `stopped`. */
  status: string;
  /** The state value (machines only). */
  value: unknown;
  /** Ids of every active state node, parents included (machines only). */
  active: string[];
  /** Keys of the transitions the last macrostep took (see `transitionKey`). */
  edges: string[];
  /** The event that produced this snapshot. */
  event: string;
  context: unknown;
  at: number;
}

export interface EventRecord {
  seq: number;
  at: number;
  /** The actor that received the event. */
  target: string;
  /** The actor that sent it, when XState knows (absent for events from outside). */
  source: string | undefined;
  type: string;
  payload: unknown;
}

export type InspectorMessage =
  | { t: 'hello'; startedAt: number; pid: number }
  | { t: 'chart'; machineId: string; svg: string }
  | { t: 'actor'; actor: ActorInfo }
  | { t: 'gone'; sessionId: string }
  | { t: 'snapshot'; snapshot: SnapshotInfo }
  | { t: 'events'; events: EventRecord[] };
