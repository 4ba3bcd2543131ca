/**
 * Real room participants for e2e tests, via `@livekit/rtc-node`.
 *
 *   const alice = await joinRoom(server, { room: 'r1', identity: 'alice' });
 *   const agent = await waitForParticipant(alice.room, { kind: ParticipantKind.AGENT });
 *   afterEach(() => leaveAllRooms());
 *
 * Every wait has a deadline and fails with a message naming what it waited for. Every joined room is
 * tracked so `leaveAllRooms()` can disconnect whatever a failing test left behind.
 */
import {
  AudioFrame,
  AudioSource,
  LocalAudioTrack,
  ParticipantKind,
  Room,
  RoomEvent,
  TrackPublishOptions,
  TrackSource,
  type LocalTrackPublication,
  type RemoteParticipant,
} from '@livekit/rtc-node';
import { AccessToken, type VideoGrant } from 'livekit-server-sdk';

/** The parts of a started server the helpers need (a `LiveKitServer` fits). */
export interface ServerCredentials {
  url: string;
  apiKey: string;
  apiSecret: string;
}

/** Rejects with `DeadlineError` if `promise` has not settled within `ms`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new DeadlineError(`${what}: no result within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export class DeadlineError extends Error {
  override name = 'DeadlineError';
}

export interface ParticipantTokenOptions {
  room: string;
  identity: string;
  name?: string;
  metadata?: string;
  attributes?: Record<string, string>;
  /** Merged over `{ roomJoin: true, room, canPublish: true, canSubscribe: true, canPublishData: true }`. */
  grant?: VideoGrant;
  ttlSeconds?: number;
}

/** A room-join JWT signed with the server's keys. */
export async function participantToken(
  server: ServerCredentials,
  options: ParticipantTokenOptions,
): Promise<string> {
  const token = new AccessToken(server.apiKey, server.apiSecret, {
    identity: options.identity,
    name: options.name ?? options.identity,
    metadata: options.metadata,
    attributes: options.attributes,
    ttl: options.ttlSeconds ?? 600,
  });
  token.addGrant({
    roomJoin: true,
    room: options.room,
    canPublish: true,
    canSubscribe: true,
    canPublishData: true,
    ...options.grant,
  });
  return token.toJwt();
}

export interface JoinedParticipant {
  identity: string;
  room: Room;
  /** Disconnects (bounded by a deadline). Idempotent. */
  leave(): Promise<void>;
}

export interface JoinOptions extends ParticipantTokenOptions {
  /** Deadline for the connection. */
  timeoutMs?: number;
  /** Join with this JWT (e.g. a job assignment token) instead of minting one from the options. */
  token?: string;
}

const joined = new Set<JoinedParticipant>();

/** Joins `options.room` as `options.identity`; rejects after `timeoutMs` (default 15 s). */
export async function joinRoom(
  server: ServerCredentials,
  options: JoinOptions,
): Promise<JoinedParticipant> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const token = options.token ?? (await participantToken(server, options));
  const room = new Room();
  let leaving: Promise<void> | undefined;
  const participant: JoinedParticipant = {
    identity: options.identity,
    room,
    leave: () => {
      leaving ??= (async () => {
        joined.delete(participant);
        await withDeadline(room.disconnect(), 5_000, `${options.identity} leaving ${options.room}`);
      })();
      return leaving;
    },
  };
  // Tracked before connecting: a connect that times out may still complete later and must be
  // disconnected by `leaveAllRooms()`.
  joined.add(participant);
  try {
    await withDeadline(
      room.connect(server.url, token, { autoSubscribe: false, dynacast: false }),
      timeoutMs,
      `${options.identity} joining room ${options.room}`,
    );
  } catch (error) {
    await participant.leave().catch(() => undefined);
    throw error;
  }
  return participant;
}

/** Disconnects every participant joined through `joinRoom` that has not left yet. */
export async function leaveAllRooms(): Promise<void> {
  const results = await Promise.allSettled([...joined].map((p) => p.leave()));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length > 0) {
    throw new AggregateError(
      failures.map((f) => f.reason as unknown),
      `${failures.length} participant(s) failed to leave`,
    );
  }
}

export interface WaitForParticipantOptions {
  identity?: string;
  kind?: ParticipantKind;
  timeoutMs?: number;
}

/** Resolves with the first remote participant (already present or joining) matching the filter. */
export async function waitForParticipant(
  room: Room,
  options: WaitForParticipantOptions = {},
): Promise<RemoteParticipant> {
  const matches = (p: RemoteParticipant): boolean =>
    (options.identity === undefined || p.identity === options.identity) &&
    (options.kind === undefined || p.kind === options.kind);
  const present = [...room.remoteParticipants.values()].find(matches);
  if (present) return present;

  let onJoin: ((p: RemoteParticipant) => void) | undefined;
  const joinedNow = new Promise<RemoteParticipant>((done) => {
    onJoin = (p) => {
      if (matches(p)) done(p);
    };
    room.on(RoomEvent.ParticipantConnected, onJoin);
  });
  try {
    return await withDeadline(
      joinedNow,
      options.timeoutMs ?? 15_000,
      `waiting for participant ${describe(options)}`,
    );
  } finally {
    if (onJoin) room.off(RoomEvent.ParticipantConnected, onJoin);
  }
}

function describe(options: WaitForParticipantOptions): string {
  const parts = [];
  if (options.identity !== undefined) parts.push(`identity=${options.identity}`);
  if (options.kind !== undefined) parts.push(`kind=${ParticipantKind[options.kind]}`);
  return parts.length > 0 ? parts.join(' ') : '(any)';
}

export interface PublishedAudio {
  publication: LocalTrackPublication;
  /** Unpublishes and closes the source. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Publishes a short silent microphone track — enough for the server to count the participant as a
 * publisher (what triggers JT_PUBLISHER jobs).
 */
export async function publishSilentAudio(
  participant: JoinedParticipant,
  timeoutMs = 10_000,
): Promise<PublishedAudio> {
  const local = participant.room.localParticipant;
  if (!local) throw new Error(`${participant.identity} is not connected`);
  const sampleRate = 48_000;
  const source = new AudioSource(sampleRate, 1);
  const track = LocalAudioTrack.createAudioTrack('silence', source);
  const options = new TrackPublishOptions({ source: TrackSource.SOURCE_MICROPHONE });
  const publication = await withDeadline(
    local.publishTrack(track, options),
    timeoutMs,
    `${participant.identity} publishing an audio track`,
  );
  // One 10 ms frame so the track has media; the server decides on publication, not on packets.
  const samplesPerChannel = sampleRate / 100;
  await withDeadline(
    source.captureFrame(
      new AudioFrame(new Int16Array(samplesPerChannel), sampleRate, 1, samplesPerChannel),
    ),
    timeoutMs,
    'capturing an audio frame',
  );
  let stopping: Promise<void> | undefined;
  return {
    publication,
    stop: () => {
      stopping ??= (async () => {
        if (participant.room.isConnected && publication.sid) {
          await withDeadline(local.unpublishTrack(publication.sid), 5_000, 'unpublishing audio');
        }
        await source.close();
      })();
      return stopping;
    },
  };
}
