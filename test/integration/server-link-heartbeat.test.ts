/**
 * The server link's heartbeat runs on the injected clock: against the emulator, with the
 * server's default 10 s interval and 5 s grace, a stalled server is given up exactly when the
 * simulated silence passes 15 s — and no real time has to pass for it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActor, setup, SimulatedClock, type EventObject } from 'xstate';
import type { ServerLinkReport } from '../../machines/serverLink.contract.ts';
import { WorkerPermissions, WorkerType } from '../../src/index.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createServerLink } from '../../src/protocol/server-link.ts';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { eventually } from '../support/emulated-worker.ts';

let emu: Emulator;
beforeAll(async () => {
  emu = await startEmulator();
});
afterAll(() => emu.close());

/** The link alone, under a parent that records its reports and connects it at once. */
function startLink(clock: SimulatedClock) {
  const reports: ServerLinkReport[] = [];
  const link = createServerLink({
    apiKey: emu.apiKey,
    apiSecret: emu.apiSecret,
    logger: createLogger({ test: 'server-link-heartbeat' }),
    registration: {
      workerType: WorkerType.ROOM,
      agentName: 'heartbeat-clock',
      version: '0.0.0',
      permissions: new WorkerPermissions(),
      deployment: '',
    },
    clock,
  });
  const parent = setup({ actors: { link } }).createMachine({
    invoke: { id: 'link', src: 'link', input: { url: emu.url } },
    entry: ({ self }) => self.getSnapshot().children.link?.send({ type: 'CONNECT_REQUESTED' }),
    on: { '*': { actions: ({ event }: { event: EventObject }) => reports.push(event as never) } },
  });
  const actor = createActor(parent).start();
  return { actor, reports };
}

describe('server link heartbeat (simulated clock)', () => {
  it('gives a silent server up after interval + grace of simulated time, not before', async () => {
    const clock = new SimulatedClock();
    const { actor, reports } = startLink(clock);
    try {
      const registered = await eventually(
        () => reports.find((r) => r.type === 'REGISTERED'),
        'the link to register',
      );
      emu.stallWorker(registered.workerId, 60_000);
      clock.increment(10_000); // silent 10 s: ping
      expect(reports.filter((r) => r.type === 'SERVER_LOST')).toEqual([]);
      clock.increment(10_000); // silent 20 s > 15 s
      expect(reports.filter((r) => r.type === 'SERVER_LOST')).toEqual([
        { type: 'SERVER_LOST', reason: 'no answer from the server for 15000 ms' },
      ]);
    } finally {
      actor.stop();
    }
  });
});
