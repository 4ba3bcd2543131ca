/** Starts real `Worker`s (with real job processes) against an emulator, and stops them all. */
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { Worker, WorkerOptions, type WorkerOptionsInit } from '../../src/index.ts';
import type { WorkerRunConfig } from '../../src/worker/worker.ts';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';

export const scriptedAgent = fileURLToPath(
  new URL('../fixtures/worker/scripted-agent.ts', import.meta.url),
);

export function workerFactory(emu: () => Emulator) {
  const started: Worker[] = [];
  /** A worker against the emulator, not yet running (stopped after each test all the same). */
  const build = (
    opts: Partial<WorkerOptionsInit> = {},
    config: Omit<WorkerRunConfig, 'handleSignals'> = {},
  ): Worker => {
    const worker = new Worker(
      new WorkerOptions({
        entrypointFnc: () => undefined,
        agentModule: scriptedAgent,
        numIdleProcesses: 1,
        // The machine's CPU is shared with other suites: a CPU-based load would make dispatch flaky.
        loadFnc: () => 0,
        wsUrl: emu().url,
        apiKey: emu().apiKey,
        apiSecret: emu().apiSecret,
        ...opts,
      }),
      { ...config, handleSignals: false },
    );
    started.push(worker);
    return worker;
  };
  const start = (
    opts: Partial<WorkerOptionsInit> = {},
    config: Omit<WorkerRunConfig, 'handleSignals'> = {},
  ): Worker => {
    const worker = build(opts, config);
    // Failures surface through the assertions on `run()` where a test cares.
    worker.run().catch(() => undefined);
    return worker;
  };
  /**
   * Resolves with the worker's id once the emulator has heard it report `available`: a new
   * worker is full until one of its processes is warm, and a dispatch before that gets no job.
   */
  const ready = async (worker: Worker): Promise<string> => {
    const id = await eventually(() => worker.id, 'the worker to register');
    await emu().waitForEvent(
      'worker-updated',
      (e) => e.workerId === id && e.status === 'available',
    );
    return id;
  };
  const stopAll = async () => {
    await Promise.all(started.splice(0).map((w) => w.stop('test over')));
  };
  return { build, start, ready, stopAll };
}

/**
 * One emulator for a test file and a factory of workers against it; registers the hooks that
 * start the emulator, stop every worker after each test and close the emulator at the end.
 */
export function useEmulatedWorkers(): {
  emu: () => Emulator;
  workers: ReturnType<typeof workerFactory>;
} {
  let emulator: Emulator | undefined;
  const emu = (): Emulator => {
    if (!emulator) throw new Error('the emulator is not started yet (use it inside tests)');
    return emulator;
  };
  const workers = workerFactory(emu);
  beforeAll(async () => {
    emulator = await startEmulator({ defaultWaitMs: 15_000 });
  });
  afterEach(() => workers.stopAll());
  afterAll(() => emulator?.close());
  return { emu, workers };
}

/** Polls `probe` until it is truthy or the deadline passes. */
export async function eventually<T>(
  probe: () => T | undefined | null | false,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
