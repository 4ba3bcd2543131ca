/**
 * The room side of dispatch: rooms own dispatches (`AD_…`) and participants; jobs are launched
 * from them. Only what the agent protocol exposes is modelled (no media): the `Room` and
 * `ParticipantInfo` snapshots that travel inside `Job`.
 */
import {
  ParticipantInfo,
  ParticipantInfo_Kind,
  ParticipantInfo_State,
  Room,
  TrackInfo,
  TrackSource,
  TrackType,
} from '@livekit/protocol';
import { guid } from './tokens.ts';
import type {
  DispatchSnapshot,
  ParticipantKindName,
  ParticipantSnapshot,
  RoomSnapshot,
} from './types.ts';

export interface ParticipantState {
  identity: string;
  sid: string;
  kind: ParticipantKindName;
  name: string;
  metadata: string;
  attributes: Record<string, string>;
  joinedAtMs: number;
  /** Set on the first published track; the server's per-identity `hasPublished`. */
  published: boolean;
  tracks: TrackInfo[];
}

/** A dispatch as its room holds it: its snapshot's shape (`dispatchSnapshot` copies it). */
export type DispatchState = DispatchSnapshot;

export interface RoomState {
  name: string;
  sid: string;
  metadata: string;
  createdAtMs: number;
  dispatches: Map<string, DispatchState>;
  participants: Map<string, ParticipantState>;
}

const KINDS: Record<ParticipantKindName, ParticipantInfo_Kind> = {
  standard: ParticipantInfo_Kind.STANDARD,
  ingress: ParticipantInfo_Kind.INGRESS,
  egress: ParticipantInfo_Kind.EGRESS,
  sip: ParticipantInfo_Kind.SIP,
  agent: ParticipantInfo_Kind.AGENT,
  connector: ParticipantInfo_Kind.CONNECTOR,
  bridge: ParticipantInfo_Kind.BRIDGE,
};

/** Agents and egress are "dependent" participants: they never trigger jobs. */
export function isDependent(p: ParticipantState): boolean {
  return p.kind === 'agent' || p.kind === 'egress';
}

export function newRoom(name: string, metadata = ''): RoomState {
  return {
    name,
    sid: guid('RM_'),
    metadata,
    createdAtMs: Date.now(),
    dispatches: new Map(),
    participants: new Map(),
  };
}

export function newDispatch(
  room: string,
  init: {
    agentName?: string;
    metadata?: string;
    deployment?: string;
    attributes?: Record<string, string>;
  },
): DispatchState {
  return {
    id: guid('AD_'),
    room,
    agentName: init.agentName ?? '',
    metadata: init.metadata ?? '',
    deployment: init.deployment ?? '',
    attributes: { ...init.attributes },
    jobIds: [],
  };
}

export function newParticipant(
  identity: string,
  init: {
    kind?: ParticipantKindName;
    name?: string;
    metadata?: string;
    attributes?: Record<string, string>;
  },
): ParticipantState {
  return {
    identity,
    sid: guid('PA_'),
    kind: init.kind ?? 'standard',
    name: init.name ?? '',
    metadata: init.metadata ?? '',
    attributes: { ...init.attributes },
    joinedAtMs: Date.now(),
    published: false,
    tracks: [],
  };
}

export function newTrack(kind: 'audio' | 'video', name: string): TrackInfo {
  return new TrackInfo({
    sid: guid('TR_'),
    type: kind === 'audio' ? TrackType.AUDIO : TrackType.VIDEO,
    source: kind === 'audio' ? TrackSource.MICROPHONE : TrackSource.CAMERA,
    name,
  });
}

/** The `Room` snapshot carried in `Job.room`. */
export function roomProto(room: RoomState): Room {
  const participants = [...room.participants.values()].filter((p) => !isDependent(p));
  return new Room({
    sid: room.sid,
    name: room.name,
    metadata: room.metadata,
    // Server defaults (`room.empty_timeout`, `room.departure_timeout`).
    emptyTimeout: 300,
    departureTimeout: 20,
    creationTime: BigInt(Math.floor(room.createdAtMs / 1000)),
    creationTimeMs: BigInt(room.createdAtMs),
    numParticipants: participants.length,
    numPublishers: participants.filter((p) => p.published).length,
  });
}

/** The `ParticipantInfo` carried in `Job.participant`. */
export function participantProto(p: ParticipantState): ParticipantInfo {
  return new ParticipantInfo({
    sid: p.sid,
    identity: p.identity,
    name: p.name,
    metadata: p.metadata,
    attributes: { ...p.attributes },
    state: ParticipantInfo_State.ACTIVE,
    kind: KINDS[p.kind],
    joinedAt: BigInt(Math.floor(p.joinedAtMs / 1000)),
    joinedAtMs: BigInt(p.joinedAtMs),
    isPublisher: p.published,
    tracks: p.tracks.map((t) => t.clone()),
  });
}

export function dispatchSnapshot(d: DispatchState): DispatchSnapshot {
  return { ...d, attributes: { ...d.attributes }, jobIds: [...d.jobIds] };
}

export function participantSnapshot(p: ParticipantState): ParticipantSnapshot {
  return { identity: p.identity, sid: p.sid, kind: p.kind, published: p.published };
}

export function roomSnapshot(r: RoomState): RoomSnapshot {
  return {
    name: r.name,
    sid: r.sid,
    metadata: r.metadata,
    dispatches: [...r.dispatches.values()].map(dispatchSnapshot),
    participants: [...r.participants.values()].map(participantSnapshot),
  };
}
