/**
 * The agent-worker protocol facts the project relies on, checked against a real livekit-server
 * with a bare `ws` client speaking `@livekit/protocol` binary frames. What was learnt is written
 * down in SERVER-FACTS.md next to this file.
 */
import type { PartialMessage } from '@bufbuild/protobuf';
import {
  JobStatus,
  JobType,
  ServerInfo_Edition,
  ServerMessage,
  WorkerMessage,
  WorkerStatus,
  type Job,
} from '@livekit/protocol';
import { ParticipantKind } from '@livekit/rtc-node';
import { AccessToken, AgentDispatchClient, type VideoGrant } from 'livekit-server-sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, type RawData } from 'ws';
import { startLiveKitServer, type LiveKitServer } from '../support/livekit-server.ts';
import {
  joinRoom,
  leaveAllRooms,
  publishSilentAudio,
  waitForParticipant,
  withDeadline,
} from '../support/participants.ts';

type ServerCase = NonNullable<ServerMessage['message']['case']>;
type ServerValue<C extends ServerCase> = Extract<ServerMessage['message'], { case: C }>['value'];
type WorkerPayload = PartialMessage<WorkerMessage>['message'];

let server: LiveKitServer;
const workers = new Set<RawWorker>();
let roomCounter = 0;
/** A room name no earlier test has used: JT_ROOM jobs are only offered when a room is created. */
const freshRoom = (label: string): string => `${label}-${Date.now().toString(36)}-${++roomCounter}`;

beforeAll(async () => {
  server = await startLiveKitServer({ name: 'server-protocol' });
});
afterEach(async () => {
  // Workers left from one test would compete for the next test's jobs.
  await Promise.all([...workers].map((w) => w.close()));
  await leaveAllRooms();
});
afterAll(async () => {
  await server?.stop();
});

/** A minimal worker: one socket, a queue of decoded server messages, deadline-bounded waits. */
class RawWorker {
  private readonly queue: ServerMessage[] = [];
  private readonly waiters = new Set<() => void>();
  private closed: Promise<void> | undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      // The server answers in JSON only after a text frame; this client never sends one.
      if (!isBinary) throw new Error(`unexpected text frame: ${rawToBuffer(data).toString()}`);
      this.queue.push(ServerMessage.fromBinary(rawToBuffer(data)));
      for (const wake of this.waiters) wake();
    });
  }

  /** Opens `/agent`; resolves once open or rejects with the HTTP status the server refused with. */
  static async open(token: string): Promise<RawWorker> {
    const ws = new WebSocket(`${server.url}/agent`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const worker = new RawWorker(ws);
    workers.add(worker);
    await withDeadline(
      new Promise<void>((done, fail) => {
        ws.once('open', () => done());
        ws.once('unexpected-response', (_req, res) => fail(new HttpRefusal(res.statusCode ?? 0)));
        ws.once('error', fail);
      }),
      5_000,
      'opening /agent',
    );
    return worker;
  }

  /** Opens and registers; resolves with the registration reply. */
  static async register(
    options: { type?: JobType; agentName?: string } = {},
  ): Promise<{ worker: RawWorker; reply: ServerValue<'register'> }> {
    const worker = await RawWorker.open(await agentToken());
    worker.send({
      case: 'register',
      value: {
        type: options.type ?? JobType.JT_ROOM,
        agentName: options.agentName ?? '',
        version: 'e2e',
      },
    });
    return { worker, reply: await worker.next('register') };
  }

  send(message: WorkerPayload): void {
    this.ws.send(new WorkerMessage({ message }).toBinary());
  }

  /** The next message of kind `kind` (earlier ones of other kinds stay queued). */
  async next<C extends ServerCase>(kind: C, timeoutMs = 8_000): Promise<ServerValue<C>> {
    const take = (): ServerMessage | undefined => {
      const index = this.queue.findIndex((m) => m.message.case === kind);
      return index < 0 ? undefined : this.queue.splice(index, 1)[0];
    };
    const ready = take();
    if (ready) return ready.message.value as ServerValue<C>;
    let wake: (() => void) | undefined;
    try {
      const message = await withDeadline(
        new Promise<ServerMessage>((done) => {
          wake = () => {
            const found = take();
            if (found) done(found);
          };
          this.waiters.add(wake);
        }),
        timeoutMs,
        `waiting for a '${kind}' server message`,
      );
      return message.message.value as ServerValue<C>;
    } finally {
      if (wake) this.waiters.delete(wake);
    }
  }

  /** Resolves once a message of kind `kind` is queued, without taking it. */
  async arrival(kind: ServerCase, timeoutMs = 8_000): Promise<this> {
    const queued = (): boolean => this.queue.some((m) => m.message.case === kind);
    if (queued()) return this;
    let wake: (() => void) | undefined;
    try {
      await withDeadline(
        new Promise<void>((done) => {
          wake = () => {
            if (queued()) done();
          };
          this.waiters.add(wake);
        }),
        timeoutMs,
        `waiting for a '${kind}' server message`,
      );
      return this;
    } finally {
      if (wake) this.waiters.delete(wake);
    }
  }

  /** Fails if a message of kind `kind` arrives within `ms`. */
  async expectNone(kind: ServerCase, ms: number): Promise<void> {
    await new Promise((done) => setTimeout(done, ms));
    const got = this.queue.filter((m) => m.message.case === kind);
    expect(got, `unexpected '${kind}' messages`).toEqual([]);
  }

  /** Answers the next availability request; returns its job. */
  async answerAvailability(available: boolean, identity?: string): Promise<Job> {
    const { job } = await this.next('availability');
    if (!job) throw new Error('availability request without a job');
    this.send({
      case: 'availability',
      value: {
        jobId: job.id,
        available,
        participantIdentity: identity ?? `agent-${job.id}`,
        participantName: 'E2E Agent',
        participantAttributes: { role: 'tester' },
      },
    });
    return job;
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      workers.delete(this);
      if (this.ws.readyState === WebSocket.CLOSED) return;
      const gone = new Promise<void>((done) => this.ws.once('close', () => done()));
      this.ws.close();
      // The server never sends a close frame back; do not wait for a handshake that will not come.
      await withDeadline(gone, 2_000, 'closing worker socket').catch(() => this.ws.terminate());
    })();
    return this.closed;
  }
}

class HttpRefusal extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

function rawToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

async function agentToken(secret = server.apiSecret, grant: VideoGrant = { agent: true }) {
  const token = new AccessToken(server.apiKey, secret);
  token.addGrant(grant);
  return token.toJwt();
}

function decodeJwtPayload(jwt: string): Record<string, unknown> {
  const payload = jwt.split('.')[1];
  if (!payload) throw new Error('not a JWT');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('livekit-server agent protocol', () => {
  it('answers register with an AW_ worker id and its server info', async () => {
    const { reply } = await RawWorker.register();
    expect(reply.workerId).toMatch(/^AW_[A-Za-z0-9]{12}$/);
    expect(reply.serverInfo).toMatchObject({
      edition: ServerInfo_Edition.Standard,
      version: '1.13.5',
      protocol: 17,
      agentProtocol: 1,
    });
    expect(reply.serverInfo?.nodeId).toMatch(/^ND_/);
  });

  it('answers a worker ping with a pong echoing its timestamp', async () => {
    const { worker } = await RawWorker.register();
    worker.send({ case: 'ping', value: { timestamp: 1234n } });
    const pong = await worker.next('pong');
    expect(pong.lastTimestamp).toBe(1234n);
    expect(Number(pong.timestamp)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('refuses the upgrade with 401 when the token is signed with the wrong secret', async () => {
    const refusal = await RawWorker.open(await agentToken('not-the-secret')).catch(
      (e: unknown) => e,
    );
    expect(refusal).toBeInstanceOf(HttpRefusal);
    expect((refusal as HttpRefusal).status).toBe(401);
  });

  it('refuses the upgrade with 401 when the token lacks the agent grant', async () => {
    const token = await agentToken(server.apiSecret, { roomList: true });
    const refusal = await RawWorker.open(token).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(HttpRefusal);
    expect((refusal as HttpRefusal).status).toBe(401);
  });

  it('offers a room job when a participant joins a new room', async () => {
    const { worker, reply } = await RawWorker.register({ type: JobType.JT_ROOM });
    const room = freshRoom('room-job');
    await joinRoom(server, { room, identity: 'alice' });

    const { job, resuming } = await worker.next('availability');
    expect(resuming).toBe(false);
    expect(job?.id).toMatch(/^AJ_/);
    expect(job?.dispatchId).toMatch(/^AD_/);
    expect(job?.type).toBe(JobType.JT_ROOM);
    expect(job?.room?.name).toBe(room);
    expect(job?.participant).toBeUndefined();
    expect(job?.agentName).toBe('');
    // The server records the job as running on this worker before the worker has answered.
    expect(job?.state?.status).toBe(JobStatus.JS_RUNNING);
    expect(job?.state?.workerId).toBe(reply.workerId);
  });

  it('assigns an accepted job with a token built from the availability answer', async () => {
    const { worker } = await RawWorker.register({ type: JobType.JT_ROOM });
    const room = freshRoom('assign');
    const alice = await joinRoom(server, { room, identity: 'alice' });
    const offered = await worker.answerAvailability(true, 'agent-under-test');

    const assignment = await worker.next('assignment');
    expect(assignment.job?.id).toBe(offered.id);
    expect(assignment.url).toBeUndefined();
    expect(assignment.job?.state?.participantIdentity).toBe('agent-under-test');

    const claims = decodeJwtPayload(assignment.token);
    expect(claims).toMatchObject({
      iss: server.apiKey,
      sub: 'agent-under-test',
      name: 'E2E Agent',
      kind: 'agent',
      attributes: { role: 'tester', 'lk.agent_name': '' },
      video: { roomJoin: true, agent: true, room },
    });
    expect(Number(claims.exp) - Number(claims.nbf)).toBe(3600);

    // The token really admits the agent, and others see it as an agent participant.
    await joinRoom(server, { room, identity: 'unused', token: assignment.token });
    const agent = await waitForParticipant(alice.room, { kind: ParticipantKind.AGENT });
    expect(agent.identity).toBe('agent-under-test');
    expect(agent.attributes['lk.agent_name']).toBe('');
  });

  it('offers a publisher job when a participant publishes a track, not when it joins', async () => {
    const { worker } = await RawWorker.register({ type: JobType.JT_PUBLISHER });
    const room = freshRoom('publisher');
    const bob = await joinRoom(server, { room, identity: 'bob' });
    await worker.expectNone('availability', 1_500);

    await publishSilentAudio(bob);
    const { job } = await worker.next('availability');
    expect(job?.type).toBe(JobType.JT_PUBLISHER);
    expect(job?.room?.name).toBe(room);
    expect(job?.participant?.identity).toBe('bob');
  });

  it('offers a rejected job to another worker', async () => {
    const first = await RawWorker.register({ type: JobType.JT_ROOM });
    const second = await RawWorker.register({ type: JobType.JT_ROOM });
    const room = freshRoom('reject');
    await joinRoom(server, { room, identity: 'carol' });

    // Selection is weighted-random, so either worker may be asked first.
    const asked = await Promise.race([
      first.worker.arrival('availability'),
      second.worker.arrival('availability'),
    ]);
    const other = asked === first.worker ? second.worker : first.worker;
    const rejected = await asked.answerAvailability(false);

    const retried = await other.next('availability');
    expect(retried.job?.id).toBe(rejected.id);
    await asked.expectNone('availability', 500);
  });

  it('offers a pending job to another worker when the asked one disconnects', async () => {
    const first = await RawWorker.register({ type: JobType.JT_ROOM });
    const second = await RawWorker.register({ type: JobType.JT_ROOM });
    await joinRoom(server, { room: freshRoom('asked-leaves'), identity: 'erin' });

    const asked = await Promise.race([
      first.worker.arrival('availability'),
      second.worker.arrival('availability'),
    ]);
    const other = asked === first.worker ? second.worker : first.worker;
    const { job } = await asked.next('availability');
    await asked.close();

    const retried = await other.next('availability');
    expect(retried.job?.id).toBe(job?.id);
  });

  it('forgets the running jobs of a disconnected worker and offers them to no other', async () => {
    const lost = await RawWorker.register({ type: JobType.JT_ROOM });
    await joinRoom(server, { room: freshRoom('lost'), identity: 'frank' });
    await lost.worker.answerAvailability(true);
    await lost.worker.next('assignment');
    const survivor = await RawWorker.register({ type: JobType.JT_ROOM });

    await lost.worker.close();
    await survivor.worker.expectNone('availability', 3_000);
  });

  it('drops a job whose availability request is not answered within about 3 s', async () => {
    const { worker } = await RawWorker.register({ type: JobType.JT_ROOM });
    await joinRoom(server, { room: freshRoom('slow'), identity: 'ivy' });
    const { job } = await worker.next('availability');
    // The nominal server wait is 10 s, but the internal RPC gives up after ~3 s; a later "yes"
    // is ignored and nothing is assigned.
    await new Promise((done) => setTimeout(done, 3_500));
    worker.send({
      case: 'availability',
      value: { jobId: job?.id ?? '', available: true, participantIdentity: 'too-late' },
    });
    await worker.expectNone('assignment', 1_500);
    expect(worker.isOpen).toBe(true);
  });

  it('sends an explicit dispatch only to the worker registered with that agent name', async () => {
    const named = await RawWorker.register({ type: JobType.JT_ROOM, agentName: 'support' });
    const otherName = await RawWorker.register({ type: JobType.JT_ROOM, agentName: 'sales' });
    const room = freshRoom('dispatch');

    const dispatch = await new AgentDispatchClient(
      server.httpUrl,
      server.apiKey,
      server.apiSecret,
    ).createDispatch(room, 'support', { metadata: '{"ticket":7}' });
    expect(dispatch.id).toMatch(/^AD_/);
    expect(dispatch.agentName).toBe('support');

    const { job } = await named.worker.next('availability');
    expect(job).toMatchObject({
      agentName: 'support',
      dispatchId: dispatch.id,
      metadata: '{"ticket":7}',
      type: JobType.JT_ROOM,
    });
    expect(job?.room?.name).toBe(room);
    await otherName.worker.expectNone('availability', 1_500);
  });

  it('also gives unnamed workers a room job when createDispatch auto-creates the room', async () => {
    const unnamed = await RawWorker.register({ type: JobType.JT_ROOM });
    const named = await RawWorker.register({ type: JobType.JT_ROOM, agentName: 'support' });
    const room = freshRoom('dispatch-autocreate');
    await new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret).createDispatch(
      room,
      'support',
    );
    const [forNamed, forUnnamed] = await Promise.all([
      named.worker.next('availability'),
      unnamed.worker.next('availability'),
    ]);
    expect(forNamed.job?.agentName).toBe('support');
    expect(forUnnamed.job?.agentName).toBe('');
    expect(forUnnamed.job?.room?.name).toBe(room);
  });

  it('dispatches nothing to a worker reporting load at or above 0.7', async () => {
    const { worker } = await RawWorker.register({ type: JobType.JT_ROOM });
    worker.send({ case: 'updateWorker', value: { status: WorkerStatus.WS_AVAILABLE, load: 0.7 } });
    // The update has no reply; a ping round-trip proves the server has processed it.
    worker.send({ case: 'ping', value: { timestamp: 1n } });
    await worker.next('pong');
    await joinRoom(server, { room: freshRoom('loaded'), identity: 'dave' });
    await worker.expectNone('availability', 4_000);

    // Control: the same worker, under the threshold, is offered the next new room.
    worker.send({ case: 'updateWorker', value: { status: WorkerStatus.WS_AVAILABLE, load: 0.69 } });
    worker.send({ case: 'ping', value: { timestamp: 2n } });
    await worker.next('pong');
    const room = freshRoom('unloaded');
    await joinRoom(server, { room, identity: 'erin' });
    const { job } = await worker.next('availability');
    expect(job?.room?.name).toBe(room);
  });

  it('dispatches nothing to a worker reporting WS_FULL', async () => {
    const { worker } = await RawWorker.register({ type: JobType.JT_ROOM });
    worker.send({ case: 'updateWorker', value: { status: WorkerStatus.WS_FULL, load: 0 } });
    worker.send({ case: 'ping', value: { timestamp: 1n } });
    await worker.next('pong');
    await joinRoom(server, { room: freshRoom('full'), identity: 'frank' });
    await worker.expectNone('availability', 4_000);
  });

  it('terminates a job whose agent leaves the room, unless the worker reported JS_SUCCESS', async () => {
    const { worker } = await RawWorker.register({ type: JobType.JT_ROOM });

    // Without an end report, the agent participant leaving makes the server terminate the job.
    const room1 = freshRoom('tracked');
    await joinRoom(server, { room: room1, identity: 'gina' });
    const job1 = await worker.answerAvailability(true);
    const token1 = (await worker.next('assignment')).token;
    const agent1 = await joinRoom(server, { room: room1, identity: 'unused', token: token1 });
    await roomKnowsAgentOf(room1, job1.id);
    await agent1.leave();
    const termination = await worker.next('termination');
    expect(termination.jobId).toBe(job1.id);

    // After JS_SUCCESS the server forgets the job: the agent leaving sends nothing, socket stays up.
    const room2 = freshRoom('ended');
    await joinRoom(server, { room: room2, identity: 'hank' });
    const job2 = await worker.answerAvailability(true);
    const token2 = (await worker.next('assignment')).token;
    const agent2 = await joinRoom(server, { room: room2, identity: 'unused', token: token2 });
    await roomKnowsAgentOf(room2, job2.id);
    worker.send({ case: 'updateJob', value: { jobId: job2.id, status: JobStatus.JS_SUCCESS } });
    worker.send({ case: 'ping', value: { timestamp: 3n } });
    await worker.next('pong');
    await agent2.leave();
    await worker.expectNone('termination', 2_000);
    expect(worker.isOpen).toBe(true);
  }, 40_000);
});

describe('livekit-server agent protocol: what the emulator also claims', () => {
  it('launches no job for a trigger that fired before any worker registered', async () => {
    await joinRoom(server, { room: freshRoom('early'), identity: 'ida' });
    const { worker } = await RawWorker.register({ type: JobType.JT_ROOM });
    await worker.expectNone('availability', 1_500);
  });

  it('launches a participant job for each non-agent participant that joins', async () => {
    const { worker } = await RawWorker.register({ type: JobType.JT_PARTICIPANT });
    await joinRoom(server, {
      room: freshRoom('participant'),
      identity: 'jane',
      attributes: { tier: 'gold' },
    });
    const { job } = await worker.next('availability');
    expect(job?.type).toBe(JobType.JT_PARTICIPANT);
    expect(job?.participant).toMatchObject({ identity: 'jane', attributes: { tier: 'gold' } });
  });

  it('launches publisher jobs for existing publishers when a dispatch is added', async () => {
    const room = freshRoom('late-dispatch');
    await publishSilentAudio(await joinRoom(server, { room, identity: 'dave' }));
    const { worker } = await RawWorker.register({ type: JobType.JT_PUBLISHER, agentName: 'late' });
    const dispatches = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
    await dispatches.createDispatch(room, 'late');
    const { job } = await worker.next('availability');
    expect(job?.type).toBe(JobType.JT_PUBLISHER);
    expect(job?.participant?.identity).toBe('dave');
  });

  it('closes the socket on a second register', async () => {
    const { worker } = await RawWorker.register({ type: JobType.JT_ROOM });
    worker.send({ case: 'register', value: { type: JobType.JT_ROOM, version: 'e2e' } });
    const deadline = Date.now() + 5_000;
    while (worker.isOpen && Date.now() < deadline) {
      await new Promise((done) => setTimeout(done, 50));
    }
    expect(worker.isOpen).toBe(false);
  });

  it('ignores migrateJob and keeps the connection', async () => {
    const { worker } = await RawWorker.register({ type: JobType.JT_ROOM });
    worker.send({ case: 'migrateJob', value: { jobIds: ['AJ_unknown'] } });
    worker.send({ case: 'ping', value: { timestamp: 7n } });
    expect((await worker.next('pong')).lastTimestamp).toBe(7n);
    expect(worker.isOpen).toBe(true);
  });

  it('runs a simulated job on the requesting worker only, as a room job whatever type was asked', async () => {
    const asking = await RawWorker.register({ type: JobType.JT_ROOM, agentName: 'sim' });
    const bystander = await RawWorker.register({ type: JobType.JT_ROOM, agentName: 'sim' });
    asking.worker.send({
      case: 'simulateJob',
      value: { type: JobType.JT_PARTICIPANT, room: { name: freshRoom('sim') } },
    });
    const { job } = await asking.worker.next('availability');
    expect(job).toMatchObject({ type: JobType.JT_ROOM, agentName: 'sim' });
    await bystander.worker.expectNone('availability', 500);
  });
});

/**
 * Waits until the room has recorded `jobId` with its agent identity. The room learns this only
 * when its whole launch finishes, which after a worker registration includes a ~5 s multi-node
 * "which agents exist" query — an agent that leaves before that is not linked to its job and
 * its worker gets no termination (see SERVER-FACTS.md).
 */
async function roomKnowsAgentOf(room: string, jobId: string): Promise<void> {
  const dispatches = new AgentDispatchClient(server.httpUrl, server.apiKey, server.apiSecret);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const jobs = (await dispatches.listDispatch(room)).flatMap((d) => d.state?.jobs ?? []);
    if (jobs.some((j) => j.id === jobId && j.state?.participantIdentity)) return;
    await new Promise((done) => setTimeout(done, 250));
  }
  throw new Error(`room ${room} did not record job ${jobId} within 15 s`);
}
