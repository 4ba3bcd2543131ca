/**
 * The agent-dispatch emulator, driven by a raw `ws` client speaking `@livekit/protocol` (not
 * the framework's worker), checked against the server facts in test/e2e/SERVER-FACTS.md.
 */
import {
  AvailabilityRequest,
  JobAssignment,
  JobStatus,
  JobTermination,
  JobType,
  ParticipantInfo_Kind,
  ParticipantPermission,
  RegisterWorkerResponse,
  ServerInfo_Edition,
  ServerMessage,
  WorkerMessage,
  WorkerPong,
  WorkerStatus,
} from '@livekit/protocol';
import type { PlainMessage } from '@bufbuild/protobuf';
import { TokenVerifier } from 'livekit-server-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { EmulatorWaitError, startEmulator } from '../../src/testing/index.ts';
import type { Emulator, EmulatorOptions } from '../../src/testing/index.ts';

type Outgoing = Exclude<WorkerMessage['message'], { case: undefined }>;
type Incoming = Exclude<ServerMessage['message'], { case: undefined }>;
type ValueOf<C extends Incoming['case']> = Extract<Incoming, { case: C }>['value'];

/** A protocol-level worker: sends `WorkerMessage`s, queues `ServerMessage`s. */
class RawWorker {
  readonly inbox: ServerMessage[] = [];
  readonly texts: string[] = [];
  readonly garbage: Uint8Array[] = [];
  pings = 0;
  closeCode: number | undefined;
  workerId = '';
  private wake: (() => void) | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) this.texts.push(data.toString());
      else {
        try {
          this.inbox.push(ServerMessage.fromBinary(data));
        } catch {
          this.garbage.push(new Uint8Array(data));
        }
      }
      this.wake?.();
    });
    ws.on('ping', () => this.pings++);
    ws.on('close', (code: number) => {
      this.closeCode = code;
      this.wake?.();
    });
    ws.on('error', () => undefined);
  }

  static async open(
    emu: Emulator,
    opts: { token?: string; query?: string } = {},
  ): Promise<RawWorker> {
    const token = opts.token ?? (await emu.workerToken());
    const ws = new WebSocket(`${emu.url}/agent${opts.query ?? ''}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new RawWorker(ws);
  }

  /** Connects and registers; defaults are an unnamed ROOM worker. */
  static async register(
    emu: Emulator,
    req: Partial<PlainMessage<import('@livekit/protocol').RegisterWorkerRequest>> = {},
    opts: { query?: string } = {},
  ): Promise<RawWorker> {
    const w = await RawWorker.open(emu, opts);
    w.send({
      case: 'register',
      value: { type: JobType.JT_ROOM, version: '0.0.1', ...req } as never,
    });
    w.workerId = (await w.next('register')).workerId;
    return w;
  }

  send(message: Outgoing): void {
    this.ws.send(new WorkerMessage({ message } as never).toBinary());
  }

  accept(job: { id: string }, extra: Record<string, unknown> = {}): void {
    this.send({
      case: 'availability',
      value: {
        jobId: job.id,
        available: true,
        participantIdentity: `agent-${job.id}`,
        ...extra,
      } as never,
    });
  }

  reject(job: { id: string }): void {
    this.send({ case: 'availability', value: { jobId: job.id, available: false } as never });
  }

  /** Next queued server message of this case (earlier ones of other cases are dropped). */
  async next<C extends Incoming['case']>(kase: C, timeoutMs = 2000): Promise<ValueOf<C>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.message.case === kase);
      if (i >= 0) {
        const [m] = this.inbox.splice(0, i + 1).slice(-1);
        return m!.message.value as ValueOf<C>;
      }
      if (this.closeCode !== undefined)
        throw new Error(`closed (${this.closeCode}) waiting for ${kase}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${kase} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Resolves with the close code; fails if the socket stays open past the deadline. */
  async closed(timeoutMs = 2000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === undefined && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    if (this.closeCode === undefined) throw new Error('socket still open');
    return this.closeCode;
  }

  close(): void {
    this.ws.terminate();
  }
}

/** HTTP status of a refused upgrade. */
async function refusedStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('upgrade accepted'));
    });
    ws.on('error', () => undefined);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls client-side state (emulator waits only see emulator events). */
async function until(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

let emu: Emulator;
const clients: RawWorker[] = [];
async function start(opts: EmulatorOptions = {}): Promise<Emulator> {
  emu = await startEmulator({ pingIntervalMs: 0, ...opts });
  return emu;
}
async function worker(...args: Parameters<typeof RawWorker.register>): Promise<RawWorker> {
  const w = await RawWorker.register(...args);
  clients.push(w);
  return w;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await emu?.close();
});

describe('connection and registration', () => {
  it('registers a worker and answers with an AW_ id and the v1.13.5 server info', async () => {
    await start({ nodeId: 'ND_test', region: 'local' });
    const w = await RawWorker.open(emu, { query: '?protocol=3' });
    clients.push(w);
    w.send({
      case: 'register',
      value: {
        type: JobType.JT_PUBLISHER,
        agentName: 'support',
        version: '1.2.3',
        deployment: 'blue',
        namespace: 'ns',
        allowedPermissions: new ParticipantPermission({ canSubscribe: true, hidden: true }),
      } as never,
    });
    const reply: RegisterWorkerResponse = await w.next('register');
    expect(reply.workerId).toMatch(/^AW_[2-9A-HJ-NP-Za-km-z]{12}$/);
    expect(reply.serverInfo).toMatchObject({
      edition: ServerInfo_Edition.Standard,
      version: '1.13.5',
      protocol: 17,
      agentProtocol: 1,
      nodeId: 'ND_test',
      region: 'local',
    });
    expect(emu.worker(reply.workerId)).toMatchObject({
      agentName: 'support',
      namespace: 'ns',
      type: 'publisher',
      version: '1.2.3',
      deployment: 'blue',
      protocol: 3,
      apiKey: 'devkey',
      status: 'available',
      load: 0,
      connected: true,
      permissions: { canSubscribe: true, canPublish: false, hidden: true },
    });
  });

  it('fills in the default permissions when the worker sends none', async () => {
    await start();
    const w = await worker(emu);
    expect(emu.worker(w.workerId)?.permissions).toEqual({
      canSubscribe: true,
      canPublish: true,
      canPublishData: true,
      canUpdateMetadata: true,
      canSubscribeMetrics: false,
      hidden: false,
      agent: false,
    });
  });

  it('refuses upgrades without a valid agent token (401) and anything but GET /agent upgrades (404)', async () => {
    await start({ keys: { devkey: 'secret', other: 'othersecret' } });
    const agentUrl = `${emu.url}/agent`;
    const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });
    expect(await refusedStatus(agentUrl)).toBe(401);
    expect(await refusedStatus(agentUrl, bearer(await emu.workerToken({ apiKey: 'nokey' })))).toBe(
      401,
    );
    expect(
      await refusedStatus(agentUrl, bearer(await emu.workerToken({ apiSecret: 'wrong' }))),
    ).toBe(401);
    expect(await refusedStatus(agentUrl, bearer(await emu.workerToken({ agent: false })))).toBe(
      401,
    );
    expect(await refusedStatus(agentUrl, { authorization: 'Basic abc' })).toBe(401);
    expect(await refusedStatus(`${emu.url}/rtc`, bearer(await emu.workerToken()))).toBe(404);
    expect((await fetch(`http://127.0.0.1:${new URL(emu.url).port}/agent`)).status).toBe(404);
    // A second configured key works, also as ?access_token=, and job tokens use that key.
    const t = await emu.workerToken({ apiKey: 'other', apiSecret: 'othersecret' });
    const ws = new WebSocket(`${agentUrl}?access_token=${t}`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.terminate();
    expect(emu.events.filter((e) => e.type === 'http-refused')).toHaveLength(7);
  });

  it('closes a connection that does not register before the deadline', async () => {
    await start({ registerTimeoutMs: 100 });
    const w = await RawWorker.open(emu);
    clients.push(w);
    expect(await w.closed()).toBe(1006);
    expect(w.inbox).toHaveLength(0);
  });

  it('answers pings with pongs before and after registration', async () => {
    await start();
    const w = await RawWorker.open(emu);
    clients.push(w);
    w.send({ case: 'ping', value: { timestamp: 42n } as never });
    const before: WorkerPong = await w.next('pong');
    expect(before.lastTimestamp).toBe(42n);
    expect(Number(before.timestamp)).toBeGreaterThan(Date.now() - 5000);
    w.send({ case: 'register', value: { type: JobType.JT_ROOM } as never });
    await w.next('register');
    w.send({ case: 'ping', value: { timestamp: 7n } as never });
    expect((await w.next('pong')).lastTimestamp).toBe(7n);
  });

  it('sends WebSocket ping control frames at the configured interval', async () => {
    await start({ pingIntervalMs: 30 });
    const w = await worker(emu);
    await sleep(150);
    expect(w.pings).toBeGreaterThanOrEqual(2);
  });

  it.each<[string, (w: RawWorker) => void]>([
    [
      'a status update before register',
      (w) => w.send({ case: 'updateWorker', value: { load: 0.1 } as never }),
    ],
    ['an empty message', (w) => w.ws.send(new WorkerMessage().toBinary())],
    ['an unknown job type', (w) => w.send({ case: 'register', value: { type: 9 } as never })],
    [
      'a deployment with an underscore',
      (w) => w.send({ case: 'register', value: { deployment: 'a_b' } as never }),
    ],
    [
      'a deployment over 64 bytes',
      (w) => w.send({ case: 'register', value: { deployment: 'x'.repeat(65) } as never }),
    ],
    ['undecodable bytes', (w) => w.ws.send(Buffer.from([0xff, 0xff, 0xff]))],
    ['a text frame that is not WorkerMessage JSON', (w) => w.ws.send('{"nope": 1}')],
  ])('closes the socket without a reply on %s', async (_name, act) => {
    await start();
    const w = await RawWorker.open(emu);
    clients.push(w);
    act(w);
    expect(await w.closed()).toBe(1006);
    expect(w.inbox).toHaveLength(0);
    expect(emu.workers).toHaveLength(0);
  });

  it('closes the socket on a second register', async () => {
    await start();
    const w = await worker(emu);
    w.send({ case: 'register', value: { type: JobType.JT_ROOM } as never });
    expect(await w.closed()).toBe(1006);
    const gone = await emu.waitForEvent('worker-disconnected', (e) => e.workerId === w.workerId);
    expect(gone.code).toBe(1006);
    expect(emu.worker(w.workerId)?.connected).toBe(false);
  });

  it('speaks proto3 JSON after a text frame and binary again after a binary frame', async () => {
    await start();
    const w = await RawWorker.open(emu);
    clients.push(w);
    w.ws.send(
      new WorkerMessage({
        message: { case: 'register', value: { type: JobType.JT_ROOM } },
      }).toJsonString(),
    );
    await emu.waitForWorker();
    await until(() => w.texts.length > 0);
    const reply = ServerMessage.fromJsonString(w.texts[0]!);
    expect(reply.message.case).toBe('register');
    expect(emu.workers[0]?.jsonMode).toBe(true);
    w.send({ case: 'ping', value: { timestamp: 1n } as never });
    expect((await w.next('pong')).lastTimestamp).toBe(1n);
  });

  it('keeps status unless sent and always overwrites load', async () => {
    await start();
    const w = await worker(emu);
    w.send({
      case: 'updateWorker',
      value: { status: WorkerStatus.WS_FULL, load: 0.5, jobCount: 3 } as never,
    });
    await emu.waitFor(() => emu.worker(w.workerId)?.status === 'full');
    expect(emu.worker(w.workerId)).toMatchObject({ load: 0.5, jobCount: 3 });
    w.send({ case: 'updateWorker', value: {} as never });
    await emu.waitForEvent('worker-updated', (e) => e.load === 0);
    expect(emu.worker(w.workerId)).toMatchObject({ status: 'full', load: 0 });
  });
});

describe('dispatch', () => {
  it('offers a room job, assigns it on acceptance and signs the job token with the worker key', async () => {
    await start();
    const w = await worker(emu, {
      agentName: 'helper',
      allowedPermissions: new ParticipantPermission({
        canSubscribe: true,
        canPublish: false,
        canPublishData: true,
        hidden: true,
      }),
    });
    const dispatch = emu.createDispatch({ room: 'r1', agentName: 'helper', metadata: '{"x":1}' });
    const req: AvailabilityRequest = await w.next('availability');
    const job = req.job!;
    expect(job.id).toMatch(/^AJ_/);
    expect(job).toMatchObject({
      type: JobType.JT_ROOM,
      agentName: 'helper',
      metadata: '{"x":1}',
      dispatchId: dispatch.id,
    });
    expect(job.room?.name).toBe('r1');
    expect(job.state?.status).toBe(JobStatus.JS_RUNNING);
    expect(job.state?.workerId).toBe(w.workerId);
    expect(typeof job.state?.startedAt).toBe('bigint');
    expect(Number(job.state!.startedAt / 1_000_000n)).toBeGreaterThan(Date.now() - 5000);
    expect(req.resuming).toBe(false);

    w.accept(job, {
      participantIdentity: 'agent-1',
      participantName: 'Helper',
      participantMetadata: 'md',
      participantAttributes: { role: 'bot', 'lk.agent_name': 'spoofed' },
    });
    const a: JobAssignment = await w.next('assignment');
    expect(a.url).toBeUndefined();
    expect(a.job?.id).toBe(job.id);
    expect(a.job?.state?.participantIdentity).toBe('agent-1');
    const claims = await new TokenVerifier('devkey', 'secret').verify(a.token);
    expect(claims).toMatchObject({
      sub: 'agent-1',
      name: 'Helper',
      metadata: 'md',
      kind: 'agent',
      attributes: { role: 'bot', 'lk.agent_name': 'helper' },
      video: {
        roomJoin: true,
        agent: true,
        room: 'r1',
        canSubscribe: true,
        canPublish: false,
        canPublishData: true,
        canUpdateOwnMetadata: false,
        hidden: true,
      },
    });
    expect(claims.exp! - claims.nbf!).toBe(3600);
    const snap = await emu.waitForJobStatus(job.id, 'running');
    expect(snap).toMatchObject({
      workerId: w.workerId,
      participantIdentity: 'agent-1',
      tries: [w.workerId],
    });
    expect(emu.worker(w.workerId)?.runningJobs).toEqual([job.id]);
  });

  it('retries a rejected job on another worker', async () => {
    // random 0 always picks the first eligible worker, in registration order.
    await start({ random: () => 0 });
    const a = await worker(emu);
    const b = await worker(emu);
    emu.createRoom('r');
    a.reject((await a.next('availability')).job!);
    const job = (await b.next('availability')).job!;
    b.accept(job);
    await b.next('assignment');
    const snap = await emu.waitForJobStatus(job.id, 'running');
    expect(snap.tries).toEqual([a.workerId, b.workerId]);
    expect(snap.workerId).toBe(b.workerId);
  });

  it('marks a job rejected when every worker declines', async () => {
    await start();
    const a = await worker(emu);
    emu.createRoom('r');
    const job = (await a.next('availability')).job!;
    a.reject(job);
    expect((await emu.waitForJobStatus(job.id, 'rejected')).tries).toEqual([a.workerId]);
  });

  it('weights the choice by spare capacity', async () => {
    // random 0.5 of total weight (1 − 0.6) + (1 − 0) = 1.4 → 0.7 lands in the second worker.
    await start({ random: () => 0.5 });
    const a = await worker(emu);
    const b = await worker(emu);
    a.send({ case: 'updateWorker', value: { load: 0.6 } as never });
    await emu.waitForEvent('worker-updated', (e) => e.workerId === a.workerId);
    emu.createRoom('r');
    await b.next('availability');
  });

  it('does not dispatch when every matching worker is at or above the target load', async () => {
    await start();
    const a = await worker(emu);
    const b = await worker(emu);
    a.send({ case: 'updateWorker', value: { load: 0.7 } as never });
    b.send({ case: 'updateWorker', value: { status: WorkerStatus.WS_FULL, load: 0 } as never });
    await emu.waitFor(
      () => emu.worker(b.workerId)?.status === 'full' && emu.worker(a.workerId)!.load > 0.6,
    );
    emu.createRoom('r');
    const skipped = await emu.waitForEvent('job-not-dispatched');
    expect(skipped).toMatchObject({ reason: 'no-capacity', room: 'r', jobType: 'room' });
    expect(emu.jobs).toEqual([]);
  });

  it('loses a job whose availability answer comes too late and ignores the late answer', async () => {
    await start({ availabilityTimeoutMs: 150 });
    const w = await worker(emu);
    emu.createRoom('r');
    const job = (await w.next('availability')).job!;
    const lost = await emu.waitForJobStatus(job.id, 'lost');
    expect(lost.error).toBe('context deadline exceeded');
    w.accept(job);
    await emu.waitForEvent('availability-ignored', (e) => e.jobId === job.id);
    await sleep(50);
    expect(w.inbox.some((m) => m.message.case === 'assignment')).toBe(false);
    expect(emu.job(job.id)?.status).toBe('lost');
  });

  it('counts the availability budget across retries', async () => {
    await start({ availabilityTimeoutMs: 200, random: () => 0 });
    const a = await worker(emu);
    const b = await worker(emu);
    emu.createRoom('r');
    const job = (await a.next('availability')).job!;
    await sleep(120);
    a.reject(job);
    await b.next('availability');
    const lost = await emu.waitForJobStatus(job.id, 'lost');
    expect(lost.endedAt! - lost.createdAt).toBeLessThan(400);
  });

  it('ends a job without assignment when the worker answers terminate', async () => {
    await start();
    const w = await worker(emu);
    emu.createRoom('r');
    const job = (await w.next('availability')).job!;
    w.send({ case: 'availability', value: { jobId: job.id, terminate: true } as never });
    await emu.waitForJobStatus(job.id, 'success');
    await sleep(30);
    expect(w.inbox.some((m) => m.message.case === 'assignment')).toBe(false);
  });

  it('launches no job for a trigger that fired before any worker registered', async () => {
    await start();
    emu.createRoom('early');
    expect((await emu.waitForEvent('job-not-dispatched')).reason).toBe('no-worker');
    const w = await worker(emu);
    await sleep(50);
    expect(w.inbox).toHaveLength(0);
    expect(emu.jobs).toEqual([]);
  });

  it('launches one publisher job per non-agent participant, on its first publication only', async () => {
    await start();
    const room = await worker(emu);
    const pub = await worker(emu, { type: JobType.JT_PUBLISHER });
    emu.createRoom('r');
    await room.next('availability');
    emu.addParticipant('r', 'alice', { name: 'Alice' });
    emu.addParticipant('r', 'bob');
    emu.addParticipant('r', 'bot', { kind: 'agent' });
    emu.publishTrack('r', 'alice');
    emu.publishTrack('r', 'alice', { kind: 'video' });
    emu.publishTrack('r', 'bob');
    emu.publishTrack('r', 'bot');
    const first = (await pub.next('availability')).job!;
    const second = (await pub.next('availability')).job!;
    expect(first.type).toBe(JobType.JT_PUBLISHER);
    expect(first.participant).toMatchObject({
      identity: 'alice',
      name: 'Alice',
      kind: ParticipantInfo_Kind.STANDARD,
      isPublisher: true,
    });
    expect(second.participant?.identity).toBe('bob');
    await sleep(30);
    expect(pub.inbox.filter((m) => m.message.case === 'availability')).toHaveLength(0);
    expect(emu.jobs.filter((j) => j.type === 'publisher').map((j) => j.participant)).toEqual([
      'alice',
      'bob',
    ]);
  });

  it('launches a participant job for each non-agent participant that joins', async () => {
    await start();
    const w = await worker(emu, { type: JobType.JT_PARTICIPANT });
    emu.addParticipant('r', 'carol', { attributes: { tier: 'gold' } });
    emu.addParticipant('r', 'agent-x', { kind: 'agent' });
    const job = (await w.next('availability')).job!;
    expect(job.type).toBe(JobType.JT_PARTICIPANT);
    expect(job.participant).toMatchObject({ identity: 'carol', attributes: { tier: 'gold' } });
    await sleep(30);
    expect(w.inbox).toHaveLength(0);
  });

  it('launches publisher jobs for existing publishers when a dispatch is added', async () => {
    await start();
    emu.addParticipant('r', 'dave');
    emu.publishTrack('r', 'dave');
    const pub = await worker(emu, { type: JobType.JT_PUBLISHER, agentName: 'late' });
    emu.createDispatch({ room: 'r', agentName: 'late' });
    expect((await pub.next('availability')).job?.participant?.identity).toBe('dave');
  });

  it('gives named dispatches only to workers of that name, and unnamed ones only to unnamed workers', async () => {
    await start();
    const named = await worker(emu, { agentName: 'support' });
    const unnamed = await worker(emu);
    emu.createRoom('explicit', { agents: [{ agentName: 'support' }] });
    const j1 = (await named.next('availability')).job!;
    expect(j1.room?.name).toBe('explicit');
    emu.createRoom('auto');
    const j2 = (await unnamed.next('availability')).job!;
    expect(j2.room?.name).toBe('auto');
    await sleep(30);
    expect(named.inbox).toHaveLength(0);
    expect(unnamed.inbox).toHaveLength(0);
  });

  it('auto-creates the room of a dispatch, which then also gets the default dispatch', async () => {
    await start();
    const named = await worker(emu, { agentName: 'support' });
    const unnamed = await worker(emu);
    emu.createDispatch({ room: 'fresh', agentName: 'support' });
    expect((await named.next('availability')).job?.room?.name).toBe('fresh');
    expect((await unnamed.next('availability')).job?.room?.name).toBe('fresh');
    expect(
      emu
        .room('fresh')
        ?.dispatches.map((d) => d.agentName)
        .sort(),
    ).toEqual(['', 'support']);
  });

  it('matches the deployment exactly', async () => {
    await start();
    const blue = await worker(emu, { deployment: 'blue' });
    emu.createDispatch({ room: 'r', agentName: '', deployment: 'blue' });
    expect((await blue.next('availability')).job?.deployment).toBe('blue');
    // The room's default dispatch (deployment "") found no worker.
    expect((await emu.waitForEvent('job-not-dispatched')).reason).toBe('no-worker');
  });
});

describe('job lifecycle', () => {
  async function runningJob(w: RawWorker, room = 'r'): Promise<string> {
    emu.createRoom(room);
    const job = (await w.next('availability')).job!;
    w.accept(job);
    await w.next('assignment');
    await emu.waitForJobStatus(job.id, 'running');
    return job.id;
  }

  it('ends a job on JS_SUCCESS or JS_FAILED and ignores updates for unknown jobs', async () => {
    await start();
    const w = await worker(emu);
    const ok = await runningJob(w, 'a');
    const bad = await runningJob(w, 'b');
    w.send({ case: 'updateJob', value: { jobId: ok, status: JobStatus.JS_SUCCESS } as never });
    w.send({
      case: 'updateJob',
      value: { jobId: bad, status: JobStatus.JS_FAILED, error: 'boom' } as never,
    });
    w.send({
      case: 'updateJob',
      value: { jobId: 'AJ_unknown', status: JobStatus.JS_FAILED } as never,
    });
    expect((await emu.waitForJobStatus(bad, 'failed')).error).toBe('boom');
    expect((await emu.waitForJobStatus(ok, 'success')).endedAt).toBeDefined();
    await emu.waitForEvent('job-update-ignored', (e) => e.jobId === 'AJ_unknown');
    expect(emu.worker(w.workerId)).toMatchObject({ runningJobs: [], connected: true });
  });

  it('sends a termination on terminateJob and records success', async () => {
    await start();
    const w = await worker(emu);
    const id = await runningJob(w);
    expect(emu.terminateJob(id)).toBe(true);
    const t: JobTermination = await w.next('termination');
    expect(t.jobId).toBe(id);
    expect(emu.job(id)?.status).toBe('success');
    expect(emu.terminateJob(id)).toBe(false);
  });

  it('terminates the jobs of a deleted dispatch', async () => {
    await start();
    const w = await worker(emu, { agentName: 'x' });
    const d = emu.createDispatch({ room: 'r', agentName: 'x' });
    const job = (await w.next('availability')).job!;
    w.accept(job);
    await emu.waitForJobStatus(job.id, 'running');
    expect(emu.deleteDispatch(d.id)?.id).toBe(d.id);
    expect((await w.next('termination')).jobId).toBe(job.id);
    expect(emu.job(job.id)?.status).toBe('success');
  });

  it('terminates a job as failed when its agent participant leaves the room', async () => {
    await start();
    const w = await worker(emu);
    const id = await runningJob(w);
    emu.addParticipant('r', `agent-${id}`, { kind: 'agent' });
    emu.removeParticipant('r', `agent-${id}`);
    expect((await w.next('termination')).jobId).toBe(id);
    expect(emu.job(id)).toMatchObject({ status: 'failed', error: 'agent worker left the room' });
  });

  it('sends no termination when the agent leaves before the room has linked its job (jobLinkDelayMs)', async () => {
    // The real server links a job to its room ~0–5 s after the assignment (SERVER-FACTS.md §1).
    await start({ jobLinkDelayMs: 150 });
    const w = await worker(emu);
    const id = await runningJob(w);
    expect(emu.job(id)?.linked).toBe(false);
    emu.addParticipant('r', `agent-${id}`, { kind: 'agent' });
    emu.removeParticipant('r', `agent-${id}`);
    const linked = await emu.waitForEvent('job-linked', (e) => e.jobId === id);
    expect(linked).toMatchObject({ room: 'r', participantIdentity: `agent-${id}` });
    // The leave went unnoticed: the job is still running, nothing was sent.
    expect(emu.events.filter((e) => e.type === 'job-terminated')).toEqual([]);
    expect(emu.job(id)).toMatchObject({ status: 'running', linked: true });
    // Once linked, the agent leaving terminates it as usual.
    emu.addParticipant('r', `agent-${id}`, { kind: 'agent' });
    emu.removeParticipant('r', `agent-${id}`);
    expect((await w.next('termination')).jobId).toBe(id);
    expect(emu.job(id)?.status).toBe('failed');
  });

  it('terminates the jobs of a dispatch deleted before the link once they are linked', async () => {
    await start({ jobLinkDelayMs: 150 });
    const w = await worker(emu, { agentName: 'x' });
    const d = emu.createDispatch({ room: 'r', agentName: 'x' });
    const job = (await w.next('availability')).job!;
    w.accept(job);
    await emu.waitForJobStatus(job.id, 'running');
    emu.deleteDispatch(d.id);
    expect(emu.job(job.id)?.status).toBe('running');
    expect((await w.next('termination')).jobId).toBe(job.id);
    const linked = await emu.waitForEvent('job-linked', (e) => e.jobId === job.id);
    const terminated = await emu.waitForEvent('job-terminated', (e) => e.jobId === job.id);
    expect(terminated.seq).toBeGreaterThan(linked.seq);
    expect(emu.job(job.id)?.status).toBe('success');
  });

  it('forgets the jobs of a disconnected worker without re-dispatching them', async () => {
    await start();
    const a = await worker(emu);
    const id = await runningJob(a);
    const b = await worker(emu);
    a.close();
    const gone = await emu.waitForEvent('worker-disconnected', (e) => e.workerId === a.workerId);
    expect(gone.forgottenJobs).toEqual([id]);
    expect(emu.job(id)?.status).toBe('running');
    expect(emu.terminateJob(id)).toBe(false);
    await sleep(30);
    expect(b.inbox).toHaveLength(0);
  });

  it('offers a pending job to another worker when the asked one disconnects', async () => {
    await start({ random: () => 0 });
    const a = await worker(emu);
    const b = await worker(emu);
    emu.createRoom('r');
    await a.next('availability');
    a.close();
    const job = (await b.next('availability')).job!;
    b.accept(job);
    expect((await emu.waitForJobStatus(job.id, 'running')).tries).toEqual([a.workerId, b.workerId]);
  });

  it('ignores migrateJob and keeps the connection', async () => {
    await start();
    const w = await worker(emu);
    w.send({ case: 'migrateJob', value: { jobIds: ['AJ_x'] } as never });
    w.send({ case: 'ping', value: { timestamp: 3n } as never });
    expect((await w.next('pong')).lastTimestamp).toBe(3n);
  });

  it('runs a simulated job on the requesting worker only', async () => {
    await start();
    const w = await worker(emu, { agentName: 'sim' });
    w.send({
      case: 'simulateJob',
      value: { type: JobType.JT_PARTICIPANT, room: { name: 'sim-room' } } as never,
    });
    const job = (await w.next('availability')).job!;
    expect(job).toMatchObject({ type: JobType.JT_ROOM, agentName: 'sim' });
    w.accept(job);
    await w.next('assignment');
    expect(emu.job(job.id)).toMatchObject({ simulated: true, status: 'running', room: 'sim-room' });
    expect(emu.terminateJob(job.id)).toBe(false);
  });
});

describe('fault injection and test API', () => {
  it('drops a worker abruptly so the client sees code 1006', async () => {
    await start();
    const w = await worker(emu);
    emu.dropWorker(w.workerId);
    expect(await w.closed()).toBe(1006);
    await emu.waitFor(() => emu.worker(w.workerId)?.connected === false);
  });

  it('stalls a worker: its availability request arrives too late and the job is lost', async () => {
    await start({ availabilityTimeoutMs: 100 });
    const w = await worker(emu);
    emu.stallWorker(w.workerId, 250);
    expect(emu.worker(w.workerId)?.stalled).toBe(true);
    emu.createRoom('r');
    const job = await emu.waitForJob();
    await emu.waitForJobStatus(job.id, 'lost');
    expect(w.inbox).toHaveLength(0);
    const late = (await w.next('availability', 1000)).job!;
    expect(late.id).toBe(job.id);
  });

  it('sends raw frames and arbitrary server messages', async () => {
    await start();
    const w = await worker(emu);
    emu.sendRaw(w.workerId, new Uint8Array([0xff, 0x01]));
    emu.sendRaw(w.workerId, 'garbage');
    emu.send(
      w.workerId,
      new ServerMessage({ message: { case: 'termination', value: { jobId: 'AJ_none' } } }),
    );
    await until(() => w.texts.includes('garbage') && w.garbage.length === 1);
    expect((await w.next('termination')).jobId).toBe('AJ_none');
  });

  it('records every received and sent message with its decoded type', async () => {
    await start();
    const w = await worker(emu);
    w.send({ case: 'ping', value: { timestamp: 1n } as never });
    await w.next('pong');
    const seen = emu.events.flatMap((e) =>
      e.type === 'message-received' || e.type === 'message-sent' ? [`${e.type}:${e.case}`] : [],
    );
    expect(seen).toEqual([
      'message-received:register',
      'message-sent:register',
      'message-received:ping',
      'message-sent:pong',
    ]);
    const listened: string[] = [];
    const off = emu.on('event', (e) => listened.push(e.type));
    emu.createRoom('r');
    off();
    expect(listened).toContain('job-created');
  });

  it('rejects a wait at its deadline with the recent events, and every wait on close', async () => {
    await start();
    const err = await emu.waitForWorker(undefined, { timeoutMs: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmulatorWaitError);
    expect((err as EmulatorWaitError).reason).toBe('timeout');
    const pending = emu.waitForJob(undefined, { timeoutMs: 10_000 });
    await emu.close();
    await expect(pending).rejects.toMatchObject({ reason: 'closed' });
    await emu.close();
  });
});
