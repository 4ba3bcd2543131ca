/**
 * The installed package imports under plain `node` (no loader, no flags), from an ES module, with
 * the public names in place, and loads no TypeScript tooling by being imported.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, inject, it } from 'vitest';

const app = inject('packedProject');

function nodeEval(code: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: app,
    encoding: 'utf8',
    timeout: 30_000,
    // Nothing inherited may sneak a loader in.
    env: { ...process.env, NODE_OPTIONS: '', ...env },
  });
}

describe('the installed package', () => {
  it('imports agentstate, agentstate/testing and agentstate/charts with plain node', () => {
    const out = nodeEval(`
      const a = await import('agentstate');
      const t = await import('agentstate/testing');
      const c = await import('agentstate/charts');
      console.log(JSON.stringify({
        main: ['WorkerOptions', 'WorkerPermissions', 'WorkerType', 'Worker', 'JobRequest', 'JobContext',
               'JobProcess', 'cli', 'runApp', 'configureLogging', 'createLogger', 'startHealthServer',
               'VERSION'].filter((n) => !(n in a)),
        testing: ['startEmulator'].filter((n) => !(n in t)),
        charts: ['workerMachine', 'jobProcessMachine', 'jobRequestMachine'].filter((n) => !(n in c)),
        version: a.VERSION,
        type: typeof new a.WorkerOptions({ entrypointFnc: () => {} }).entrypointFnc,
      }));
    `);
    const r = JSON.parse(out) as {
      main: string[];
      testing: string[];
      version: string;
      type: string;
    };
    expect(r.main).toEqual([]);
    expect(r.testing).toEqual([]);
    expect(r.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.type).toBe('function');
  });

  it('loads neither tsx nor esbuild when imported', () => {
    const out = nodeEval(`
      import { Session } from 'node:inspector/promises';
      await import('agentstate');
      await import('agentstate/testing');
      const s = new Session();
      s.connect();
      const urls = [];
      s.on('Debugger.scriptParsed', (m) => urls.push(m.params.url));
      await s.post('Debugger.enable');
      console.log(JSON.stringify(urls.filter((u) => /node_modules\\/(tsx|esbuild)\\//.test(u))));
    `);
    expect(JSON.parse(out)).toEqual([]);
  });

  it('costs a job process no HTTP server, hashing, compiler, option-resolution, proxy or worker-only package modules', () => {
    // What a job process imports: its entry, the rest of it (the agent loader and the runtime),
    // then the user's `import 'agentstate'`. Each module looked for here is the worker's only.
    const out = nodeEval(
      `
      const entry = import.meta.resolve('agentstate');
      await import(new URL('./job-process/job-entry.js', entry).href);
      await import(new URL('./job-process/job-dialogue.js', entry).href);
      await import('agentstate');
      const builtins = process.moduleLoadList.filter((m) =>
        /^NativeModule (http|_http_server|crypto|fs\\/promises)$/.test(m));
      const { Session } = await import('node:inspector/promises');
      const s = new Session();
      s.connect();
      const urls = [];
      s.on('Debugger.scriptParsed', (m) => urls.push(m.params.url));
      await s.post('Debugger.enable');
      const own = urls.filter((u) => /\\/dist\\/src\\/(agent-file\\/compile-typescript|job-host\\/(memory|rtc-bundle)|options\\/(resolve|proxy))\\.js$/.test(u));
      // The worker's dependencies (the chart, the server link, metrics, the pool's own side, the
      // command line, the inspector, Redis, the compilers), and the ES builds of the protocol and
      // its protobuf runtime (a second runtime beside the CommonJS one rtc-node's bindings use).
      const packages = urls.filter((u) => /\\/node_modules\\/(xstate|ws|prom-client|livekit-server-sdk|redis|@redis|@statelyai|elkjs|sade|https-proxy-agent|esbuild|tsx)\\/|\\/tinypool\\/dist\\/index\\.js$|\\/@livekit\\/protocol\\/dist\\/index\\.mjs$|\\/@bufbuild\\/protobuf\\/dist\\/esm\\//.test(u));
      console.log(JSON.stringify({ builtins, own, packages, entry: urls.some((u) => u.endsWith('/job-entry.js')) }));
    `,
      { AGENTSTATE_JOB_PROCESS: '1' },
    );
    expect(JSON.parse(out)).toEqual({ builtins: [], own: [], packages: [], entry: true });
  });

  it('loads no OpenTelemetry module in a job process, and no SDK in the worker, with OTel not configured', () => {
    // With no OTEL_* variable and no `tracerProvider`, neither the SDK nor an exporter is loaded;
    // in a job process not even @opentelemetry/api (the worker has it through prom-client).
    const loaded = (env: NodeJS.ProcessEnv) =>
      JSON.parse(
        nodeEval(
          `
      const entry = import.meta.resolve('agentstate');
      if (process.env.AGENTSTATE_JOB_PROCESS) {
        await import(new URL('./job-process/job-entry.js', entry).href);
        await import(new URL('./job-process/job-dialogue.js', entry).href);
      }
      await import('agentstate');
      const { Session } = await import('node:inspector/promises');
      const s = new Session();
      s.connect();
      const urls = [];
      s.on('Debugger.scriptParsed', (m) => urls.push(m.params.url));
      await s.post('Debugger.enable');
      const otel = urls.filter((u) => /node_modules\\/@opentelemetry\\//.test(u));
      const own = urls.filter((u) => /\\/dist\\/src\\/telemetry\\/(otel-sdk|otel-logs|otel-metrics|job-spans|job-traces|worker-telemetry|span-forwarding)\\.js$/.test(u));
      console.log(JSON.stringify({
        packages: [...new Set(otel.map((u) => /@opentelemetry\\/([^/]+)/.exec(u)[1]))].sort(),
        own,
      }));
    `,
          {
            OTEL_SDK_DISABLED: '',
            OTEL_TRACES_EXPORTER: '',
            OTEL_EXPORTER_OTLP_ENDPOINT: '',
            ...env,
          },
        ),
      ) as { packages: string[]; own: string[] };
    expect(loaded({ AGENTSTATE_JOB_PROCESS: '1' })).toEqual({ packages: [], own: [] });
    // The worker: prom-client's api, and nothing else (which also shows the probe sees them).
    expect(loaded({})).toEqual({ packages: ['api'], own: [] });
  });

  it('runs from dist/, compiled JavaScript, not from TypeScript sources', () => {
    const out = nodeEval(`console.log(import.meta.resolve('agentstate'))`);
    expect(out.trim()).toMatch(/node_modules\/agentstate\/dist\/src\/index\.js$/);
  });
});
