/**
 * `agentstate/testing`: an in-process LiveKit agent-dispatch emulator for tests.
 * See {@link startEmulator}.
 */
export { Emulator, startEmulator } from './emulator.ts';
export type { WaitOptions } from './emulator.ts';
export type { CreateDispatchInit, ParticipantInit, RoomAgentDispatchInit } from './room-api.ts';
export type {
  DispatchSnapshot,
  EmulatorEvent,
  EmulatorEventType,
  EmulatorOptions,
  JobAcceptSnapshot,
  JobKind,
  JobSnapshot,
  JobStatusName,
  NotDispatchedReason,
  ParticipantKindName,
  ParticipantSnapshot,
  RoomSnapshot,
  TerminationReason,
  WorkerPermissionsSnapshot,
  WorkerSnapshot,
} from './types.ts';
export { EmulatorWaitError } from '../errors.ts';
