/**
 * A job process's finished spans travel to its worker over the IPC channel it already has
 * (`spans` in `machines/jobIpc.contract.ts`), and the worker exports them with its own OTLP
 * exporter: a job process then loads the trace SDK but no exporter, and opens no connection of
 * its own (bench/results/tracing-cost.md says what that saves). The spans are sent as plain
 * data (what the OTLP transformer reads of a `ReadableSpan`), and made into spans again in the
 * worker under the job process's own resource.
 */
import { createTraceState, type Attributes, type SpanContext } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type { ForwardedSpans } from '../../machines/jobIpc.contract.ts';

/** A span context as plain data: its trace state as its header text. */
type PlainContext = Omit<SpanContext, 'traceState'> & { traceState?: string };

/** What of a span crosses the boundary: every field the OTLP transformer reads. */
interface PlainSpan {
  name: string;
  kind: ReadableSpan['kind'];
  spanContext: PlainContext;
  parentSpanContext: PlainContext | undefined;
  startTime: ReadableSpan['startTime'];
  endTime: ReadableSpan['endTime'];
  duration: ReadableSpan['duration'];
  status: ReadableSpan['status'];
  attributes: ReadableSpan['attributes'];
  links: (Omit<ReadableSpan['links'][number], 'context'> & { context: PlainContext })[];
  events: ReadableSpan['events'];
  droppedAttributesCount: number;
  droppedEventsCount: number;
  droppedLinksCount: number;
  instrumentationScope: ReadableSpan['instrumentationScope'];
}

function plainContext(c: SpanContext): PlainContext {
  const { traceState, ...rest } = c;
  return traceState ? { ...rest, traceState: traceState.serialize() } : rest;
}

function liveContext(c: PlainContext): SpanContext {
  const { traceState, ...rest } = c;
  return traceState ? { ...rest, traceState: createTraceState(traceState) } : rest;
}

function plain(s: ReadableSpan): PlainSpan {
  return {
    name: s.name,
    kind: s.kind,
    spanContext: plainContext(s.spanContext()),
    parentSpanContext: s.parentSpanContext ? plainContext(s.parentSpanContext) : undefined,
    startTime: s.startTime,
    endTime: s.endTime,
    duration: s.duration,
    status: s.status,
    attributes: s.attributes,
    links: s.links.map((l) => ({ ...l, context: plainContext(l.context) })),
    events: s.events,
    droppedAttributesCount: s.droppedAttributesCount,
    droppedEventsCount: s.droppedEventsCount,
    droppedLinksCount: s.droppedLinksCount,
    instrumentationScope: s.instrumentationScope,
  };
}

/** The job process's exporter: each batch goes to the worker as one IPC message. */
export class IpcSpanExporter implements SpanExporter {
  readonly #send: (m: ForwardedSpans, sent: () => void) => void;
  readonly #resource: Attributes;

  constructor(resource: Resource, send: (m: ForwardedSpans, sent: () => void) => void) {
    this.#send = send;
    this.#resource = { ...resource.attributes };
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    try {
      this.#send({ type: 'spans', resource: this.#resource, spans: spans.map(plain) }, () =>
        done({ code: ExportResultCode.SUCCESS }),
      );
    } catch (error) {
      done({
        code: ExportResultCode.FAILED,
        error: error instanceof Error ? error : new Error(String(error)),
      });
    }
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** The worker's side: the spans of a `spans` message, as spans again, under their resource. */
export function receivedSpans(m: ForwardedSpans, resources: Map<string, Resource>): ReadableSpan[] {
  // One resource object per process: the transformer groups spans by resource identity.
  const key = JSON.stringify(m.resource);
  let resource = resources.get(key);
  if (!resource) {
    if (resources.size >= 256) resources.clear();
    resource = resourceFromAttributes(m.resource);
    resources.set(key, resource);
  }
  const res = resource;
  return (m.spans as PlainSpan[]).map((s) => {
    const sc = liveContext(s.spanContext);
    return {
      ...s,
      spanContext: () => sc,
      parentSpanContext: s.parentSpanContext ? liveContext(s.parentSpanContext) : undefined,
      links: s.links.map((l) => ({ ...l, context: liveContext(l.context) })),
      ended: true,
      resource: res,
    };
  });
}
