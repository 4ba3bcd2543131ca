/**
 * A job's trace on real parts: the real `agent` bin (test/fixtures/e2e/observed.ts) on a real
 * livekit-server, with the standard OTEL_* environment pointed at a real Jaeger
 * (test/support/jaeger.ts). Jobs are dispatched by the server API and each trace is read back
 * from Jaeger's HTTP API: the worker's spans and the job process's, linked across the process
 * boundary, a span the entrypoint makes with `@opentelemetry/api`, the attributes; a declined
 * offer and a failed job are traces too, with their reasons. The same worker sends its metrics
 * and log records over OTLP too (`OTEL_METRICS_EXPORTER`, `OTEL_LOGS_EXPORTER`), read back from
 * Jaeger's Prometheus and debug exporters.
 */
import { AgentDispatchClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllAgents, startAgent, type AgentProcess } from '../support/agent-process.ts';
import {
  startJaeger,
  tagOf,
  type Jaeger,
  type JaegerSpan,
  type JaegerTrace,
} from '../support/jaeger.ts';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import { freeTcpPort, sleep } from '../support/managed-process.ts';

const SERVICE = 'agentstate-e2e-traces';

let jaeger: Jaeger;
let server: LiveKitServer;
let worker: AgentProcess;
let dispatches: AgentDispatchClient;

beforeAll(async () => {
  [jaeger, server] = await Promise.all([
    startJaeger({ name: 'e2e-traces' }),
    startLiveKitServer({ name: 'e2e-traces' }),
  ]);
  worker = startAgent(['start', 'test/fixtures/e2e/observed.ts', '--num-idle-processes', '1'], {
    LIVEKIT_URL: server.url,
    LIVEKIT_API_KEY: server.apiKey,
    LIVEKIT_API_SECRET: server.apiSecret,
    OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint,
    OTEL_SERVICE_NAME: SERVICE,
    // Export batches within a fraction of a second instead of the default 5 s (60 s for metrics).
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_METRICS_EXPORTER: 'otlp',
    OTEL_METRIC_EXPORT_INTERVAL: '500',
    OTEL_LOGS_EXPORTER: 'otlp',
  });
  await worker.waitForLog((r) => r.message === 'registered with the server', 'registering', 30_000);
  dispatches = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
}, 60_000);
afterAll(async () => {
  try {
    await killAllAgents();
  } finally {
    await Promise.all([server?.stop(), jaeger?.stop()]);
  }
});

/** Polls Jaeger until the room's trace has every span named in `names` (spans arrive in batches). */
async function traceOfRoom(room: string, names: string[]): Promise<JaegerTrace> {
  const deadline = Date.now() + 15_000;
  let last: JaegerTrace[] = [];
  while (Date.now() < deadline) {
    last = await jaeger.traces(SERVICE, { 'agentstate.room.name': room });
    const found = last.find((t) => names.every((n) => t.spans.some((s) => s.operationName === n)));
    if (found) return found;
    await sleep(200);
  }
  console.log(
    worker.records
      .filter((r) => r.roomName === room || /tracing|OpenTelemetry|export/i.test(r.message))
      .map((r) => JSON.stringify(r))
      .join('\n'),
  );
  throw new Error(
    `no trace of room ${room} with ${names.join(', ')}; Jaeger has: ${JSON.stringify(
      last.map((t) => t.spans.map((s) => s.operationName)),
    )}`,
  );
}

function span(t: JaegerTrace, name: string): JaegerSpan {
  const found = t.spans.filter((s) => s.operationName === name);
  expect(found, name).toHaveLength(1);
  return found[0]!;
}

function parentOf(s: JaegerSpan): string | undefined {
  return s.references.find((r) => r.refType === 'CHILD_OF')?.spanID;
}

/** The `agentstate.process.kind` resource attribute of the process that made `s`. */
function kindOf(t: JaegerTrace, s: JaegerSpan): unknown {
  return t.processes[s.processID]?.tags.find((tag) => tag.key === 'agentstate.process.kind')?.value;
}

/** The `process.pid` resource attribute of the process that made `s`. */
function pidOf(t: JaegerTrace, s: JaegerSpan): unknown {
  return t.processes[s.processID]?.tags.find((tag) => tag.key === 'process.pid')?.value;
}

describe('job traces', () => {
  it('follow a job from its offer to its end, across the process boundary, with the user’s span', async () => {
    await dispatches.createDispatch('traced-1', 'observed');
    const ended = await worker.waitForLog(
      (r) => r.message === 'job ended' && r.roomName === 'traced-1',
      'the traced job to end',
      20_000,
    );
    const t = await traceOfRoom('traced-1', [
      'agentstate.job',
      'agentstate.job.offer',
      'agentstate.job.assignment',
      'agentstate.job.handoff',
      'agentstate.job.launch',
      'agentstate.job.entrypoint',
      'agentstate.job.connect',
      'agentstate.job.end',
      'user.greeting',
    ]);
    const root = span(t, 'agentstate.job');
    expect(parentOf(root)).toBeUndefined();
    expect(tagOf(root, 'agentstate.job.id')).toBe(ended.jobId);
    expect(String(tagOf(root, 'agentstate.job.id'))).toMatch(/^AJ_/);
    expect(tagOf(root, 'agentstate.room.name')).toBe('traced-1');
    expect(tagOf(root, 'agentstate.agent.name')).toBe('observed');
    expect(String(tagOf(root, 'agentstate.worker.id'))).toMatch(/^AW_/);
    expect(tagOf(root, 'agentstate.decision')).toBe('accepted');
    expect(tagOf(root, 'agentstate.job.outcome')).toBe('success');
    expect(tagOf(root, 'agentstate.job.reason')).toBe('observed: traced done');
    expect(kindOf(t, root)).toBe('worker');

    // The worker's steps, children of the job's span, in the order the job took them.
    const steps = ['offer', 'assignment', 'handoff'].map((n) => span(t, `agentstate.job.${n}`));
    for (const s of steps) {
      expect(parentOf(s)).toBe(root.spanID);
      expect(kindOf(t, s)).toBe('worker');
    }
    expect(tagOf(steps[0]!, 'agentstate.decision')).toBe('accepted');
    expect(steps[0]!.startTime).toBeLessThanOrEqual(steps[1]!.startTime);
    expect(steps[1]!.startTime).toBeLessThanOrEqual(steps[2]!.startTime);

    // The job process's spans hang under the worker's span through the launch's trace context.
    const launch = span(t, 'agentstate.job.launch');
    const entrypoint = span(t, 'agentstate.job.entrypoint');
    const end = span(t, 'agentstate.job.end');
    for (const s of [launch, entrypoint, end]) {
      expect(parentOf(s)).toBe(root.spanID);
      expect(kindOf(t, s)).toBe('job');
      expect(tagOf(s, 'agentstate.job.id')).toBe(ended.jobId);
    }
    // Two processes: the job's span says which pid ran it, and that is the job side's process.
    expect(tagOf(entrypoint, 'process.pid')).toBe(tagOf(root, 'agentstate.job.pid'));
    expect(pidOf(t, entrypoint)).toBe(tagOf(root, 'agentstate.job.pid'));
    expect(pidOf(t, root)).not.toBe(pidOf(t, entrypoint));
    expect(tagOf(end, 'agentstate.job.outcome')).toBe('success');
    expect(tagOf(end, 'agentstate.job.reason')).toBe('observed: traced done');
    const connect = span(t, 'agentstate.job.connect');
    expect(parentOf(connect)).toBe(entrypoint.spanID);
    expect(String(tagOf(connect, 'url.full'))).toBe(server.url);

    // The user's own span, made with @opentelemetry/api inside the entrypoint.
    const user = span(t, 'user.greeting');
    expect(parentOf(user)).toBe(entrypoint.spanID);
    expect(tagOf(user, 'greeting.text')).toBe('hello');
    expect(kindOf(t, user)).toBe('job');

    // Log lines carry the trace: the worker's record of the end, and the job process's own.
    expect(ended.traceId).toBe(t.traceID);
    const jobSide = worker.records.find(
      (r) => r.message === 'job ending' && r.jobId === ended.jobId,
    );
    expect(jobSide).toMatchObject({ traceId: t.traceID, spanId: entrypoint.spanID });
  }, 45_000);

  it('cost a job process the trace SDK but no exporter: its spans go out through the worker', async () => {
    await dispatches.createDispatch('modules-1', 'observed');
    const probe = await worker.waitForLog(
      (r) => r.message === 'otel modules' && r.roomName === 'modules-1',
      'the probe',
      20_000,
    );
    const packages = probe.packages as string[];
    expect(packages).toEqual(expect.arrayContaining(['api', 'sdk-trace', 'context-async-hooks']));
    expect(packages.filter((p) => p.startsWith('exporter-') || p.startsWith('otlp-'))).toEqual([]);
    // And yet its spans are in Jaeger, under the job process's own resource.
    const t = await traceOfRoom('modules-1', ['agentstate.job', 'agentstate.job.entrypoint']);
    expect(kindOf(t, span(t, 'agentstate.job.entrypoint'))).toBe('job');
  }, 45_000);

  it('record a declined offer with its decision and reason', async () => {
    await dispatches.createDispatch('decline-1', 'observed');
    await worker.waitForLog(
      (r) => r.message === 'job declined' && r.decision === 'rejected',
      'the decline',
      20_000,
    );
    const t = await traceOfRoom('decline-1', ['agentstate.job', 'agentstate.job.offer']);
    const root = t.spans.find((s) => s.operationName === 'agentstate.job')!;
    expect(tagOf(root, 'agentstate.decision')).toBe('rejected');
    expect(tagOf(root, 'agentstate.decision.reason')).toBe('observed: declined on purpose');
    const offer = t.spans.find(
      (s) => s.operationName === 'agentstate.job.offer' && parentOf(s) === root.spanID,
    );
    expect(offer && tagOf(offer, 'agentstate.decision')).toBe('rejected');
    // Declined: it never reached a process.
    expect(t.spans.some((s) => s.operationName === 'agentstate.job.handoff')).toBe(false);
    expect(t.spans.some((s) => kindOf(t, s) === 'job')).toBe(false);
  }, 45_000);

  it('record a failed job as an error, with its reason, on both sides', async () => {
    await dispatches.createDispatch('fail-1', 'observed');
    const ended = await worker.waitForLog(
      (r) => r.message === 'job ended' && r.roomName === 'fail-1',
      'the failed job to end',
      20_000,
    );
    expect(ended).toMatchObject({ outcome: 'failed' });
    const t = await traceOfRoom('fail-1', [
      'agentstate.job',
      'agentstate.job.entrypoint',
      'agentstate.job.end',
    ]);
    const root = span(t, 'agentstate.job');
    expect(tagOf(root, 'agentstate.job.outcome')).toBe('failed');
    expect(String(tagOf(root, 'agentstate.job.reason'))).toContain('observed: failed on purpose');
    expect(tagOf(root, 'otel.status_code')).toBe('ERROR');
    expect(tagOf(root, 'error')).toBe(true);
    const entrypoint = span(t, 'agentstate.job.entrypoint');
    expect(tagOf(entrypoint, 'otel.status_code')).toBe('ERROR');
    expect(String(tagOf(entrypoint, 'otel.status_description'))).toContain(
      'observed: failed on purpose',
    );
    expect(tagOf(span(t, 'agentstate.job.end'), 'agentstate.job.outcome')).toBe('failed');
  }, 45_000);

  it('come with the worker’s metrics and log records over OTLP, the records carrying the trace', async () => {
    await dispatches.createDispatch('traced-2', 'observed');
    const ended = await worker.waitForLog(
      (r) => r.message === 'job ended' && r.roomName === 'traced-2',
      'the traced job to end',
      20_000,
    );
    const t = await traceOfRoom('traced-2', ['agentstate.job', 'agentstate.job.entrypoint']);
    // The metrics `/metrics` serves, received over OTLP and served again by Jaeger's exporter.
    const deadline = Date.now() + 15_000;
    let jobs = 0;
    let text = '';
    while (Date.now() < deadline && jobs < 2) {
      text = await (await fetch(jaeger.metricsUrl)).text();
      jobs = Number(
        /^agentstate_jobs_total\{[^}]*outcome="success"[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0,
      );
      await sleep(200);
    }
    expect(jobs, text.slice(0, 2_000)).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^agentstate_availability_answer_seconds_bucket\{/m);
    // The record of the job's end, as Jaeger's debug exporter printed it, with the job's trace.
    const record = new RegExp(
      `Body: Str\\(job ended\\)[\\s\\S]*?-> jobId: Str\\(${String(ended.jobId)}\\)[\\s\\S]*?Trace ID: ${t.traceID}`,
    );
    const logDeadline = Date.now() + 15_000;
    while (Date.now() < logDeadline && !record.test(jaeger.logText())) await sleep(200);
    expect(jaeger.logText()).toMatch(record);
  }, 45_000);
});

describe('a TracerProvider of the user’s', () => {
  it('gets the job’s spans from both processes, with no OTEL_* environment', async () => {
    const service = 'agentstate-e2e-provided';
    const own = startAgent(['start', 'test/fixtures/e2e/provided-tracer.ts'], {
      LIVEKIT_URL: server.url,
      LIVEKIT_API_KEY: server.apiKey,
      LIVEKIT_API_SECRET: server.apiSecret,
      E2E_OTLP_TRACES_URL: `${jaeger.otlpEndpoint}/v1/traces`,
      E2E_SERVICE_NAME: service,
    });
    await own.waitForLog((r) => r.message === 'registered with the server', 'registering', 30_000);
    await dispatches.createDispatch('provided-1', 'provided');
    const ended = await own.waitForLog(
      (r) => r.message === 'job ended' && r.roomName === 'provided-1',
      'the job to end',
      20_000,
    );
    expect(ended).toMatchObject({ outcome: 'success' });
    const deadline = Date.now() + 15_000;
    let t: JaegerTrace | undefined;
    while (Date.now() < deadline && !t) {
      const traces = await jaeger.traces(service, { 'agentstate.room.name': 'provided-1' });
      t = traces.find((x) =>
        ['agentstate.job', 'agentstate.job.entrypoint', 'agentstate.job.connect'].every((n) =>
          x.spans.some((s) => s.operationName === n),
        ),
      );
      if (!t) await sleep(200);
    }
    expect(t, 'the trace in Jaeger').toBeDefined();
    const root = span(t!, 'agentstate.job');
    expect(parentOf(span(t!, 'agentstate.job.entrypoint'))).toBe(root.spanID);
    expect(ended.traceId).toBe(t!.traceID);
  }, 60_000);
});

describe('a broken exporter', () => {
  it('costs a job nothing: it runs and ends as it would untraced', async () => {
    const deaf = await freeTcpPort();
    // Nothing listens there: every export fails (connection refused).
    const broken = startAgent(['start', 'test/fixtures/e2e/observed.ts'], {
      LIVEKIT_URL: server.url,
      LIVEKIT_API_KEY: server.apiKey,
      LIVEKIT_API_SECRET: server.apiSecret,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${deaf}`,
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_METRIC_EXPORT_INTERVAL: '200',
      OTEL_LOGS_EXPORTER: 'otlp',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
    await broken.waitForLog(
      (r) => r.message === 'registered with the server',
      'registering',
      30_000,
    );
    // The Jaeger-pointed worker goes, so the server offers the job to this one.
    worker.kill();
    await worker.exited;
    await dispatches.createDispatch('traced-broken', 'observed');
    const ended = await broken.waitForLog(
      (r) => r.message === 'job ended' && r.roomName === 'traced-broken',
      'the job to end',
      20_000,
    );
    expect(ended).toMatchObject({ outcome: 'success', reason: 'observed: traced done' });
    expect(String(ended.traceId)).toMatch(/^[\da-f]{32}$/);
    // And the worker goes on serving: the next job runs too.
    await dispatches.createDispatch('traced-broken-2', 'observed');
    await broken.waitForLog(
      (r) =>
        r.message === 'job ended' && r.roomName === 'traced-broken-2' && r.outcome === 'success',
      'the next job to end',
      20_000,
    );
    expect(broken.records.some((r) => r.message === 'worker stopped')).toBe(false);
    expect(broken.records.filter((r) => r.level === 'ERROR')).toEqual([]);
  }, 60_000);
});
