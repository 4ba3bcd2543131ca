/**
 * The OpenTelemetry trace SDK, set up from the standard environment: imported (dynamically) only
 * when `./otel-config.ts` says traces are wanted, in the worker and in each job process. A
 * user-provided `TracerProvider` is used as it is; otherwise one is built here with the OTLP
 * exporter (HTTP, protobuf), registered as the process's global provider, so the user's own
 * `@opentelemetry/api` spans go where ours go, and an `AsyncLocalStorage` context manager, so
 * that a span the entrypoint starts is a child of the job's span.
 *
 * Nothing here throws into the caller's way: a broken exporter fails its exports (the SDK drops
 * the batch and reports through its error handler, which logs at debug), never a job.
 */
import {
  context,
  diag,
  propagation,
  ROOT_CONTEXT,
  trace,
  type Context,
  type TracerProvider,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  ExportResultCode,
  getNumberFromEnv,
  getStringFromEnv,
  setGlobalErrorHandler,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
  type Resource,
} from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider as SdkTracerProvider,
  type Sampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import { withDeadline } from '../clock.ts';
import type { Logger } from '../log/logger.ts';
import { VERSION } from '../version.ts';
import type { ForwardedSpans } from '../../machines/jobIpc.contract.ts';
import type { OtelWanted, TraceCarrier } from './otel-config.ts';
import { IpcSpanExporter, receivedSpans } from './span-forwarding.ts';

/** The instrumentation scope of every span agentstate makes. */
export const TRACER_NAME = 'agentstate';

/** How long a flush or a shutdown of the exporters may hold a process's end. */
const FLUSH_TIMEOUT_MS = 2_000;

const propagator = new W3CTraceContextPropagator();

/** A process's tracing: the provider its spans go to, and its flush. */
export interface Tracing {
  provider: TracerProvider;
  /** Sends what is batched; resolves within its deadline whatever the exporter does. */
  flush(): Promise<void>;
  /** Flushes and stops our provider (a user's is only flushed). */
  shutdown(): Promise<void>;
  /** The worker's: exports the spans a job process forwarded (`./span-forwarding.ts`). */
  exportForwarded?(m: ForwardedSpans): void;
}

export interface TracingInit {
  wanted: OtelWanted;
  /** The user's `tracerProvider` option, used as it is. */
  provider: TracerProvider | undefined;
  /** `worker` or `job`: a resource attribute of our provider. */
  processKind: 'worker' | 'job';
  log: Logger;
  /**
   * A job process's way to its worker: with it, the job's spans go to the worker, which exports
   * them, instead of to an exporter of this process's own.
   */
  forward?: (m: ForwardedSpans, sent: () => void) => void;
}

/** The resource of every signal: the environment's (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`) over ours. */
export function otelResource(processKind: 'worker' | 'job'): Resource {
  return defaultResource()
    .merge(
      resourceFromAttributes({
        'service.name': 'agentstate',
        'service.version': VERSION,
        'process.pid': process.pid,
        'agentstate.process.kind': processKind,
      }),
    )
    .merge(detectResources({ detectors: [envDetector] }));
}

/** Sets up tracing as `init` asks; never rejects (a failure is logged, and tracing is off). */
export async function startTracing(init: TracingInit): Promise<Tracing | undefined> {
  try {
    return await setUp(init);
  } catch (error) {
    init.log.warn('OpenTelemetry tracing could not be set up; continuing without it', { error });
    return undefined;
  }
}

async function setUp(init: TracingInit): Promise<Tracing | undefined> {
  const { wanted, provider, processKind, log } = init;
  // Export failures (a collector down, a bad endpoint) are the SDK's to report: at debug, so a
  // missing collector does not flood the job's logs.
  setGlobalErrorHandler((error) => log.debug('OpenTelemetry export failed', { error }));
  diag.disable();
  // Our context manager and propagator, unless the user's own setup registered theirs first.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(propagator);
  if (wanted.traces === 'provider' && provider) {
    const p = provider as TracerProvider & {
      forceFlush?: () => Promise<void>;
    };
    const flush = () => bounded(p.forceFlush?.());
    return { provider, flush, shutdown: flush };
  }
  if (wanted.traces !== 'otlp' && wanted.traces !== 'console') return undefined;
  const resource = otelResource(processKind);
  const exporter = new InFlightExports(await spanExporter(init, resource));
  const sdk = new SdkTracerProvider({
    resource,
    sampler: samplerFromEnv(),
    spanProcessors: [new BatchSpanProcessor({ exporter, ...batchOptionsFromEnv() })],
  });
  trace.setGlobalTracerProvider(sdk);
  const resources = new Map<string, Resource>();
  return {
    provider: sdk,
    exportForwarded: (m) => {
      exporter.export(receivedSpans(m, resources), (result) => {
        if (result.code !== ExportResultCode.SUCCESS) {
          log.debug('OpenTelemetry export failed', { error: result.error });
        }
      });
    },
    // forceFlush resolves at once when the batch it would send is already on its way (taken by
    // the processor's timer, or by an earlier flush); a process about to exit waits for those too.
    flush: () =>
      bounded(sdk.forceFlush({ timeoutMillis: FLUSH_TIMEOUT_MS }).then(() => exporter.idle())),
    shutdown: () => bounded(sdk.shutdown()),
  };
}

/**
 * The exporter the environment names: OTLP (imported only here, and in a job process not at
 * all: its spans go to the worker) or the console.
 */
async function spanExporter(init: TracingInit, resource: Resource): Promise<SpanExporter> {
  if (init.wanted.traces !== 'otlp') return new ConsoleSpanExporter();
  if (init.forward) return new IpcSpanExporter(resource, init.forward);
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
  return new OTLPTraceExporter();
}

/** An exporter that knows which of its exports are still under way. */
class InFlightExports implements SpanExporter {
  readonly #inner: SpanExporter;
  readonly #pending = new Set<Promise<void>>();

  constructor(inner: SpanExporter) {
    this.#inner = inner;
  }

  export(
    spans: Parameters<SpanExporter['export']>[0],
    done: Parameters<SpanExporter['export']>[1],
  ) {
    let settle!: () => void;
    const p = new Promise<void>((resolve) => {
      settle = resolve;
    });
    this.#pending.add(p);
    const finish: typeof done = (result) => {
      this.#pending.delete(p);
      settle();
      done(result);
    };
    try {
      this.#inner.export(spans, finish);
    } catch (error) {
      finish({
        code: ExportResultCode.FAILED,
        error: error instanceof Error ? error : new Error(String(error)),
      });
    }
  }

  /** Resolves once every export started so far has ended. */
  idle(): Promise<void> {
    return Promise.all([...this.#pending]).then(() => undefined);
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}

function bounded(work: Promise<void> | undefined): Promise<void> {
  if (!work) return Promise.resolve();
  return withDeadline(work, FLUSH_TIMEOUT_MS, 'flushing OpenTelemetry spans').catch(
    () => undefined,
  );
}

/** `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`, as the specification names them. */
function samplerFromEnv(): Sampler {
  const name = getStringFromEnv('OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on';
  const ratio = () => {
    const arg = getNumberFromEnv('OTEL_TRACES_SAMPLER_ARG');
    return new TraceIdRatioBasedSampler(arg !== undefined && arg >= 0 && arg <= 1 ? arg : 1);
  };
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** `OTEL_BSP_*`: the batch span processor's delay, sizes and export timeout. */
function batchOptionsFromEnv() {
  const out: {
    scheduledDelayMillis?: number;
    maxQueueSize?: number;
    maxExportBatchSize?: number;
    exportTimeoutMillis?: number;
  } = {};
  const set = (key: keyof typeof out, name: string) => {
    const v = getNumberFromEnv(name);
    if (v !== undefined && v > 0) out[key] = v;
  };
  set('scheduledDelayMillis', 'OTEL_BSP_SCHEDULE_DELAY');
  set('maxQueueSize', 'OTEL_BSP_MAX_QUEUE_SIZE');
  set('maxExportBatchSize', 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE');
  set('exportTimeoutMillis', 'OTEL_BSP_EXPORT_TIMEOUT');
  return out;
}

/** The W3C trace context of `ctx`'s span, to carry into a job process. */
export function injectCarrier(ctx: Context): TraceCarrier | undefined {
  const out: Record<string, string> = {};
  propagator.inject(ctx, out, {
    set: (carrier: Record<string, string>, key: string, value: string) => {
      carrier[key] = value;
    },
  });
  if (!out.traceparent) return undefined;
  return out.tracestate
    ? { traceparent: out.traceparent, tracestate: out.tracestate }
    : { traceparent: out.traceparent };
}

/** The remote parent a job process's spans hang under, from the carrier its launch brought. */
export function extractCarrier(carrier: TraceCarrier): Context {
  return propagator.extract(ROOT_CONTEXT, carrier, {
    get: (c: TraceCarrier, key: string) =>
      key === 'traceparent' || key === 'tracestate' ? c[key] : undefined,
    keys: (c: TraceCarrier) => Object.keys(c),
  });
}
