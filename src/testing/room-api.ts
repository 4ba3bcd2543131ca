/**
 * The room-facing half of the emulator's test API: rooms, agent dispatches and participants,
 * and the job triggers they fire (as measured in test/e2e/SERVER-FACTS.md). Jobs are launched
 * synchronously at the trigger, so "no worker registered yet" means no job, ever.
 */
import { AgentStateError } from '../errors.ts';
import type { EventInput } from './connection.ts';
import type { Dispatcher } from './dispatcher.ts';
import {
  dispatchSnapshot,
  isDependent,
  newDispatch,
  newParticipant,
  newRoom,
  newTrack,
  participantSnapshot,
  roomSnapshot,
} from './rooms.ts';
import type { DispatchState, RoomState } from './rooms.ts';
import type {
  DispatchSnapshot,
  ParticipantKindName,
  ParticipantSnapshot,
  RoomSnapshot,
} from './types.ts';

/** One entry of `CreateRoomRequest.agents` / `RoomConfiguration.agents`. */
export interface RoomAgentDispatchInit {
  agentName: string;
  metadata?: string;
  deployment?: string;
  attributes?: Record<string, string>;
}

/** Arguments of {@link RoomApi.createDispatch} (`CreateAgentDispatchRequest`). */
export interface CreateDispatchInit extends RoomAgentDispatchInit {
  room: string;
}

/** Options of {@link RoomApi.addParticipant}. */
export interface ParticipantInit {
  /** Default `standard`. `agent` and `egress` participants never trigger jobs. */
  kind?: ParticipantKindName;
  name?: string;
  metadata?: string;
  attributes?: Record<string, string>;
}

export abstract class RoomApi {
  private readonly roomMap = new Map<string, RoomState>();
  protected abstract readonly dispatcher: Dispatcher;
  protected abstract emit(event: EventInput): void;

  /** Every live room. */
  get rooms(): RoomSnapshot[] {
    return [...this.roomMap.values()].map(roomSnapshot);
  }

  /** The room with this name, if it exists. */
  room(name: string): RoomSnapshot | undefined {
    const r = this.roomMap.get(name);
    return r && roomSnapshot(r);
  }

  /**
   * Creates a room (like `RoomService.CreateRoom` or a first participant) and launches a
   * `JT_ROOM` job for each of its dispatches: the given `agents`, or — when there are none —
   * one default dispatch with an empty agent name. An existing room is returned unchanged.
   */
  createRoom(
    name: string,
    opts: { agents?: RoomAgentDispatchInit[]; metadata?: string } = {},
  ): RoomSnapshot {
    return roomSnapshot(this.ensureRoom(name, opts));
  }

  /**
   * Deletes a room. Like the server, it sends nothing to workers; their jobs stay as they are.
   * Returns false if there was no such room.
   */
  deleteRoom(name: string): boolean {
    return this.roomMap.delete(name);
  }

  /**
   * Adds a dispatch to a room (`AgentDispatchService.CreateDispatch`), creating the room if
   * needed — which, as on the server, also gives that new room the default dispatch. Launches
   * a `JT_ROOM` job now, plus publisher/participant jobs for the non-agent participants there.
   */
  createDispatch(init: CreateDispatchInit): DispatchSnapshot {
    const room = this.ensureRoom(init.room, {});
    const d = newDispatch(room.name, init);
    room.dispatches.set(d.id, d);
    this.emit({ type: 'dispatch-created', dispatch: dispatchSnapshot(d) });
    this.dispatcher.launch(room, d, 'room');
    for (const p of room.participants.values()) {
      if (isDependent(p)) continue;
      this.dispatcher.launch(room, d, 'participant', p);
      if (p.published) this.dispatcher.launch(room, d, 'publisher', p);
    }
    return dispatchSnapshot(d);
  }

  /**
   * Deletes a dispatch (`DeleteDispatch`) and sends `JobTermination` for each of its jobs still
   * running on a connected worker (recorded as success) — for a job the room has not linked yet
   * (`jobLinkDelayMs`), once it is. Returns the deleted dispatch, or undefined if no room has it.
   */
  deleteDispatch(dispatchId: string): DispatchSnapshot | undefined {
    for (const room of this.roomMap.values()) {
      const d = room.dispatches.get(dispatchId);
      if (d === undefined) continue;
      room.dispatches.delete(dispatchId);
      this.emit({ type: 'dispatch-deleted', dispatch: dispatchSnapshot(d) });
      for (const jobId of d.jobIds) this.dispatcher.terminateForDeletedDispatch(jobId);
      return dispatchSnapshot(d);
    }
    return undefined;
  }

  /**
   * A participant joins (creating the room if needed). Non-agent participants trigger a
   * `JT_PARTICIPANT` job per dispatch. An identity already in the room is returned unchanged.
   */
  addParticipant(
    roomName: string,
    identity: string,
    init: ParticipantInit = {},
  ): ParticipantSnapshot {
    const room = this.ensureRoom(roomName, {});
    const existing = room.participants.get(identity);
    if (existing) return participantSnapshot(existing);
    const p = newParticipant(identity, init);
    room.participants.set(identity, p);
    this.emit({ type: 'participant-joined', room: room.name, identity, kind: p.kind });
    if (!isDependent(p)) this.launchAll(room, 'participant', identity);
    return participantSnapshot(p);
  }

  /**
   * The participant publishes a track. Its first publication (per identity, reset when it
   * leaves) launches a `JT_PUBLISHER` job per dispatch, unless it is an agent or egress.
   */
  publishTrack(
    roomName: string,
    identity: string,
    track: { kind?: 'audio' | 'video'; name?: string } = {},
  ): ParticipantSnapshot {
    const room = this.roomMap.get(roomName);
    const p = room?.participants.get(identity);
    if (room === undefined || p === undefined) {
      throw new AgentStateError(`emulator: no participant ${identity} in room ${roomName}`);
    }
    const first = !p.published;
    p.published = true;
    p.tracks.push(newTrack(track.kind ?? 'audio', track.name ?? ''));
    this.emit({ type: 'track-published', room: room.name, identity, first });
    if (first && !isDependent(p)) this.launchAll(room, 'publisher', identity);
    return participantSnapshot(p);
  }

  /**
   * The participant leaves. If it is the agent participant of a running job in this room
   * (identity = `JobState.participantIdentity`) and the room has linked that job
   * (`jobLinkDelayMs`), the server terminates it and records it failed ("agent worker left the
   * room"); an unlinked job stays running, unnoticed. Returns false if it was not in the room.
   */
  removeParticipant(roomName: string, identity: string): boolean {
    const room = this.roomMap.get(roomName);
    if (room === undefined || !room.participants.delete(identity)) return false;
    this.emit({ type: 'participant-left', room: room.name, identity });
    for (const job of this.dispatcher.jobs.values()) {
      if (
        job.room === room.name &&
        job.status === 'running' &&
        job.linked &&
        job.participantIdentity === identity
      ) {
        this.dispatcher.terminate(job.id, 'agent-left');
      }
    }
    return true;
  }

  private ensureRoom(
    name: string,
    opts: { agents?: RoomAgentDispatchInit[]; metadata?: string },
  ): RoomState {
    const existing = this.roomMap.get(name);
    if (existing) return existing;
    const room = newRoom(name, opts.metadata);
    this.roomMap.set(name, room);
    this.emit({ type: 'room-created', room: name });
    // Backward compatibility on the server: no explicit agents means one unnamed dispatch.
    const inits = opts.agents && opts.agents.length > 0 ? opts.agents : [{ agentName: '' }];
    const created: DispatchState[] = [];
    for (const init of inits) {
      const d = newDispatch(name, init);
      room.dispatches.set(d.id, d);
      created.push(d);
      this.emit({ type: 'dispatch-created', dispatch: dispatchSnapshot(d) });
    }
    for (const d of created) this.dispatcher.launch(room, d, 'room');
    return room;
  }

  private launchAll(room: RoomState, type: 'participant' | 'publisher', identity: string): void {
    const p = room.participants.get(identity);
    if (p === undefined) return;
    for (const d of room.dispatches.values()) this.dispatcher.launch(room, d, type, p);
  }
}
