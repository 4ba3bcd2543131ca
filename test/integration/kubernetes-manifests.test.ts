/**
 * deploy/kubernetes/ checked against the code: the Deployment's command runs the real `agent`
 * bin (against the emulator) with the manifest's own args, its probes answer on the declared
 * port and paths, the grace period outlasts the drain, credentials come from the Secret, the
 * autoscaler's metric is one the worker exports and the adapter serves, and the memory request
 * covers the measured RSS (bench/results/job-rss.json).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerOptions } from '../../src/index.ts';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { killAllAgents, type AgentProcess } from '../support/agent-process.ts';
import {
  CLI_AGENT,
  get,
  healthPort,
  isRegistered,
  startCliAgent,
  TEST_KEY,
  TEST_SECRET,
  until,
} from '../support/cli-agent.ts';
import {
  flagValue,
  manifest,
  manifestDocuments,
  mebibytes,
  parseEmbedded,
  type Container,
  type Deployment,
  type HorizontalPodAutoscaler,
} from '../support/manifests.ts';

const deployment = manifest<Deployment>('deployment.yaml', 'Deployment');
const pod = deployment.spec.template.spec;
const container: Container = pod.containers[0]!;
const args = container.args ?? [];
const hpa = manifest<HorizontalPodAutoscaler>('hpa.yaml', 'HorizontalPodAutoscaler');
const defaults = new WorkerOptions({ entrypointFnc: () => undefined });
const packageJson = JSON.parse(readFileSync('package.json', 'utf8')) as {
  bin: Record<string, string>;
};

/** The container port a probe names (by name or number). */
function probePort(port: string | number): number {
  if (typeof port === 'number') return port;
  const named = container.ports?.find((p) => p.name === port);
  if (!named) throw new Error(`no container port named ${port}`);
  return named.containerPort;
}

let emu: Emulator;
let worker: AgentProcess;
let port: number;

beforeAll(async () => {
  emu = await startEmulator({ keys: { [TEST_KEY]: TEST_SECRET } });
  // The container's command line, with the image's agent file swapped for the test fixture and
  // the health server moved to a free loopback port (8081 may be taken on a shared machine).
  expect(container.command).toEqual(['agent']);
  const agentFile = args.findIndex((a) => a.endsWith('.js'));
  expect(agentFile).toBeGreaterThan(0);
  const runArgs = args.map((a, i) => (i === agentFile ? CLI_AGENT : a));
  worker = startCliAgent(emu, [...runArgs, '--port', '0', '--host', '127.0.0.1']);
  port = await healthPort(worker);
  await worker.waitForLog(isRegistered, 'registration');
}, 60_000);
afterAll(async () => {
  await killAllAgents();
  await emu?.close();
});

describe('the Kubernetes manifests (deploy/kubernetes)', () => {
  it('runs `agent start`, a command the package ships, with args the CLI accepts', () => {
    expect(Object.keys(packageJson.bin)).toContain(container.command![0]);
    expect(args[0]).toBe('start');
    // The worker took the manifest's flags: it is running and registered, not a usage error.
    expect(worker.child.exitCode).toBeNull();
  });

  it('probes liveness on / and readiness on /ready, on the port the worker serves', async () => {
    const liveness = container.livenessProbe!.httpGet;
    const readiness = container.readinessProbe!.httpGet;
    expect(liveness.path).toBe('/');
    expect(readiness.path).toBe('/ready');
    // No --port in the args: the worker serves on its default, which the probes must name.
    expect(flagValue(args, '--port')).toBeUndefined();
    expect(probePort(liveness.port)).toBe(defaults.port);
    expect(probePort(readiness.port)).toBe(defaults.port);

    expect((await get(port, liveness.path)).status).toBe(200);
    await until(async () => (await get(port, readiness.path)).status === 200, 'ready', 20_000);
  });

  it('autoscales on a metric the worker exports and the adapter serves per pod', async () => {
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    const [metric] = hpa.spec.metrics;
    expect(metric?.type).toBe('Pods');
    const name = metric!.pods!.metric.name;
    const exported = (await get(port, '/metrics')).body;
    expect(exported).toContain(`# TYPE ${name} gauge`);
    const value = Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(exported)?.[1]);
    expect(value).toBeGreaterThanOrEqual(0);
    expect(value).toBeLessThanOrEqual(1);
    // A target inside the metric's range, or the HPA would never scale (or always).
    const target = metric!.pods!.target;
    expect(target.type).toBe('AverageValue');
    const averageValue = target.averageValue!.endsWith('m')
      ? Number(target.averageValue!.slice(0, -1)) / 1000
      : Number(target.averageValue);
    expect(averageValue).toBeGreaterThan(0);
    expect(averageValue).toBeLessThan(1);

    // prometheus-adapter serves it under the same name, per pod.
    const adapter = manifest<{ data: Record<string, string> }>(
      'prometheus-adapter-rules.yaml',
      'ConfigMap',
    );
    const rules = parseEmbedded<{
      rules: {
        seriesQuery: string;
        resources: { overrides: Record<string, { resource: string }> };
        name: { as: string };
      }[];
    }>(adapter.data['config.yaml']!).rules;
    const rule = rules.find((r) => r.name.as === name);
    expect(rule?.seriesQuery).toContain(name);
    expect(rule?.resources.overrides.pod?.resource).toBe('pod');

    // Prometheus scrapes the pods the Deployment makes, on the port the worker serves.
    const monitor = manifest<{
      spec: {
        selector: { matchLabels: Record<string, string> };
        podMetricsEndpoints: { port: string; path: string }[];
      };
    }>('podmonitor.yaml', 'PodMonitor');
    expect(deployment.spec.template.metadata.labels).toMatchObject(
      monitor.spec.selector.matchLabels,
    );
    const endpoint = monitor.spec.podMetricsEndpoints[0]!;
    expect(probePort(endpoint.port)).toBe(defaults.port);
    expect(endpoint.path).toBe('/metrics');
  });

  it('gives pods a grace period longer than the drain plus the last jobs’ shutdown', () => {
    const drainMs = Number(flagValue(args, '--drain-timeout') ?? defaults.drainTimeout);
    expect(drainMs).toBeGreaterThan(0);
    const graceMs = pod.terminationGracePeriodSeconds! * 1000;
    expect(graceMs).toBeGreaterThan(drainMs + defaults.shutdownProcessTimeout);
  });

  it('mounts a writable emptyDir at AGENTSTATE_STATE_DIR for the job journal, the root filesystem being read-only', () => {
    expect(container.securityContext?.readOnlyRootFilesystem).toBe(true);
    const dir = container.env?.find((e) => e.name === 'AGENTSTATE_STATE_DIR')?.value;
    expect(dir).toBeDefined();
    const mount = container.volumeMounts?.find((m) => m.mountPath === dir);
    expect(mount).toBeDefined();
    expect(pod.volumes?.find((v) => v.name === mount!.name)?.emptyDir).toBeDefined();
  });

  it('reads the API key and secret from a Secret, never from a literal', () => {
    const env = container.env ?? [];
    const example = manifest<{ metadata: { name: string }; stringData: Record<string, string> }>(
      'secret.example.yaml',
      'Secret',
    );
    for (const name of ['LIVEKIT_API_KEY', 'LIVEKIT_API_SECRET']) {
      const v = env.find((e) => e.name === name);
      expect(v?.value).toBeUndefined();
      expect(v?.valueFrom?.secretKeyRef).toEqual({ name: example.metadata.name, key: name });
      expect(Object.keys(example.stringData)).toContain(name);
    }
    expect(env.find((e) => e.name === 'LIVEKIT_URL')?.value).toMatch(/^wss?:\/\//);
  });

  it('requests memory for the worker, its warm processes and a running job at the measured RSS', () => {
    const measured = JSON.parse(readFileSync('bench/results/job-rss.json', 'utf8')) as {
      worker: { idle: { rssMb: number } };
      warmIdleJobProcess: { rssMb: number };
      runningJobProcess: { rssMb: number };
    };
    const idle = Number(flagValue(args, '--num-idle-processes'));
    expect(idle).toBeGreaterThanOrEqual(1);
    const floorMb =
      measured.worker.idle.rssMb +
      idle * measured.warmIdleJobProcess.rssMb +
      measured.runningJobProcess.rssMb;
    const requests = container.resources!.requests!;
    const limits = container.resources!.limits!;
    expect(mebibytes(requests.memory!)).toBeGreaterThanOrEqual(floorMb);
    expect(mebibytes(limits.memory!)).toBeGreaterThanOrEqual(mebibytes(requests.memory!));
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
  });

  it('lists every fleet manifest in the kustomization, and not the example Secret', () => {
    const [kustomization] = manifestDocuments('kustomization.yaml') as { resources: string[] }[];
    expect(kustomization!.resources.sort()).toEqual(
      ['deployment.yaml', 'hpa.yaml', 'podmonitor.yaml'].sort(),
    );
  });

  it('on SIGTERM stays live on / and turns not ready on /ready while its job runs', async () => {
    emu.createRoom('hold-k8s');
    await worker.waitForLog(
      (r) => r.message === 'entrypoint' && r.roomName === 'hold-k8s',
      'the held job',
    );
    worker.child.kill('SIGTERM');
    await until(
      async () => (await get(port, container.readinessProbe!.httpGet.path)).status === 503,
      'not ready while draining',
    );
    expect((await get(port, '/ready')).body).toBe('draining\n');
    expect((await get(port, container.livenessProbe!.httpGet.path)).status).toBe(200);
  });
});
