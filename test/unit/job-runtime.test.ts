/**
 * The child-side job runtime and JobContext against a stand-in room: how each end of a job is
 * detected, that callbacks always run, and that waits give up.
 */
import { EventEmitter } from 'node:events';
import { ParticipantKind, RoomEvent, type RemoteParticipant, type Room } from '@livekit/rtc-node';
import { describe, expect, it } from 'vitest';
import { JobProcess } from '../../src/job-process/process.ts';
import { startJob } from '../../src/job-process/runtime.ts';
import type { RunningJobInfo } from '../../machines/jobProcess.contract.ts';
import { createLogger } from '../../src/log/logger.ts';
import type { JobContext } from '../../src/job-process/context.ts';

class FakeRoom extends EventEmitter {
  isConnected = false;
  remoteParticipants = new Map<string, RemoteParticipant>();
  connects: unknown[][] = [];
  disconnected = false;
  failConnect = false;
  async connect(...args: unknown[]) {
    this.connects.push(args);
    if (this.failConnect) throw new Error('refused');
    this.isConnected = true;
  }
  async disconnect() {
    this.disconnected = true;
    this.isConnected = false;
  }
}

const participant = (identity: string, kind = ParticipantKind.STANDARD) =>
  ({ identity, kind }) as unknown as RemoteParticipant;

function info(job: object = {}): RunningJobInfo {
  return {
    jobId: 'J1',
    job: { id: 'J1', room: { name: 'r1' }, ...job },
    acceptArguments: { name: '', identity: 'agent', metadata: '', attributes: {} },
    url: 'ws://lk.example',
    token: 'tok',
    workerId: 'W1',
  };
}

function run(entry: (ctx: JobContext) => unknown, jobFields: object = {}) {
  const room = new FakeRoom();
  const job = startJob({
    entrypointFnc: entry as never,
    info: info(jobFields),
    proc: new JobProcess(1),
    log: createLogger(),
    callbackTimeout: 200,
    leaveTimeout: 200,
    room: room as unknown as Room,
  });
  return { room, job };
}

describe('job runtime', () => {
  it('ends successfully when the entrypoint returns without connecting', async () => {
    const { job } = run(() => {});
    expect(await job.done).toEqual({
      outcome: 'success',
      reason: 'entrypoint returned without connecting',
      clean: true,
    });
  });

  it('keeps a connected job alive after the entrypoint returns, until the room disconnects', async () => {
    const { room, job } = run((ctx) => ctx.connect({ autoSubscribe: false }));
    await new Promise((r) => setTimeout(r, 20));
    expect(room.connects).toEqual([
      ['ws://lk.example', 'tok', { autoSubscribe: false, dynacast: false }],
    ]);
    room.emit(RoomEvent.Disconnected, 0);
    expect((await job.done).reason).toMatch(/^room disconnected/);
    expect(room.disconnected).toBe(true);
  });

  it('ends a PUBLISHER job when its publisher leaves', async () => {
    const { room, job } = run((ctx) => ctx.connect(), {
      type: 'JT_PUBLISHER',
      participant: { identity: 'pub' },
    });
    await new Promise((r) => setTimeout(r, 20));
    room.emit(RoomEvent.ParticipantDisconnected, participant('someone-else'));
    room.emit(RoomEvent.ParticipantDisconnected, participant('pub'));
    expect(await job.done).toEqual({ outcome: 'success', reason: 'publisher left', clean: true });
  });

  it('ends a PARTICIPANT job when the participant it is for leaves, and only then', async () => {
    const { room, job } = run((ctx) => ctx.connect(), {
      type: 'JT_PARTICIPANT',
      participant: { identity: 'jane' },
    });
    await new Promise((r) => setTimeout(r, 20));
    let ended = false;
    void job.done.then(() => (ended = true));
    room.emit(RoomEvent.ParticipantDisconnected, participant('someone-else'));
    await new Promise((r) => setTimeout(r, 20));
    expect(ended).toBe(false);
    room.emit(RoomEvent.ParticipantDisconnected, participant('jane'));
    expect(await job.done).toEqual({
      outcome: 'success',
      reason: 'participant left',
      clean: true,
    });
  });

  it('gives a PARTICIPANT job ctx.participant: the job’s ParticipantInfo, then the live participant once in the room', async () => {
    const seen: unknown[] = [];
    let ctx!: JobContext;
    const { room, job } = run(
      async (c) => {
        ctx = c;
        seen.push(c.participant);
        await c.connect();
      },
      { type: 'JT_PARTICIPANT', participant: { identity: 'jane', attributes: { tier: 'gold' } } },
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(seen[0]).toMatchObject({ identity: 'jane', attributes: { tier: 'gold' } });
    const live = participant('jane');
    room.remoteParticipants.set('jane', live);
    expect(ctx.participant).toBe(live);
    expect(ctx.participantInfo).toMatchObject({ identity: 'jane', attributes: { tier: 'gold' } });
    job.shutdown('test over');
    await job.done;
  });

  it('fails a throwing entrypoint and still runs every callback, each within its budget', async () => {
    const ran: string[] = [];
    const { job } = run((ctx) => {
      ctx.addShutdownCallback(() => new Promise(() => {})); // overruns its budget
      ctx.addShutdownCallback((reason) => void ran.push(reason));
      throw new Error('boom');
    });
    // Not clean: a callback overran (the process would not be reused).
    expect(await job.done).toEqual({
      outcome: 'failed',
      reason: 'entrypoint threw: boom',
      clean: false,
    });
    expect(ran).toEqual(['entrypoint threw: boom']);
  });

  it('calls the entrypoint before startJob returns (the hand-off waits for no microtask)', () => {
    let called = false;
    run(() => {
      called = true;
      return new Promise(() => {});
    });
    expect(called).toBe(true);
  });

  it('ends on the worker’s request while the entrypoint still runs', async () => {
    const { job } = run(() => new Promise(() => {}));
    job.shutdown('server terminated the job');
    expect(await job.done).toEqual({
      outcome: 'success',
      reason: 'server terminated the job',
      clean: true,
    });
  });

  it('does not count a failed connection as connected', async () => {
    const { job } = run(async (ctx) => {
      (ctx.room as unknown as FakeRoom).failConnect = true;
      await ctx.connect().catch(() => {});
    });
    expect((await job.done).reason).toBe('entrypoint returned without connecting');
  });

  it('exposes job, room name, worker id and the PUBLISHER participant', async () => {
    let seen: JobContext | undefined;
    const { job } = run(
      (ctx) => {
        seen = ctx;
      },
      { type: 'JT_PUBLISHER', participant: { identity: 'pub' } },
    );
    await job.done;
    expect(seen?.jobId).toBe('J1');
    expect(seen?.roomName).toBe('r1');
    expect(seen?.workerId).toBe('W1');
    expect(seen?.publisher?.identity).toBe('pub');
  });
});

describe('waitForParticipant', () => {
  async function connected() {
    let ctx!: JobContext;
    const { room, job } = run(async (c) => {
      ctx = c;
      await c.connect();
    });
    await new Promise((r) => setTimeout(r, 20));
    return { room, job, ctx };
  }

  it('refuses before the room is connected', async () => {
    let ctx!: JobContext;
    const { job } = run((c) => {
      ctx = c;
    });
    await job.done;
    await expect(ctx.waitForParticipant()).rejects.toThrow(/not connected/);
  });

  it('resolves with a participant already there, skipping agents', async () => {
    const { room, ctx, job } = await connected();
    room.remoteParticipants.set('a', participant('a', ParticipantKind.AGENT));
    room.remoteParticipants.set('u', participant('u'));
    expect((await ctx.waitForParticipant()).identity).toBe('u');
    job.shutdown('test over');
    await job.done;
  });

  it('resolves when the named participant joins, and removes its listeners', async () => {
    const { room, ctx, job } = await connected();
    const p = ctx.waitForParticipant('bob');
    room.emit(RoomEvent.ParticipantConnected, participant('alice'));
    room.emit(RoomEvent.ParticipantConnected, participant('bob'));
    expect((await p).identity).toBe('bob');
    expect(room.listenerCount(RoomEvent.ParticipantConnected)).toBe(0);
    job.shutdown('test over');
    await job.done;
  });

  it('gives up on its deadline, on abort and when the job ends', async () => {
    const { ctx, job, room } = await connected();
    await expect(ctx.waitForParticipant('x', { timeout: 10 })).rejects.toThrow(/within 10 ms/);
    const ac = new AbortController();
    const aborted = ctx.waitForParticipant('x', { signal: ac.signal });
    ac.abort();
    await expect(aborted).rejects.toThrow(/aborted/);
    const pending = ctx.waitForParticipant('x');
    job.shutdown('bye');
    await expect(pending).rejects.toThrow(/job ended/);
    await job.done;
    expect(room.listenerCount(RoomEvent.ParticipantConnected)).toBe(0);
  });
});
