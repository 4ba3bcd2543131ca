/**
 * `agent dispatch --room NAME [--agent-name X] [--metadata M]`: puts one agent in the room.
 *
 * What the server does with each request decides how (test/e2e/SERVER-FACTS.md, "What creates a
 * job"): a dispatch to a room that does not exist creates it, and a new room starts the unnamed
 * (automatic) agent by itself, so a plain dispatch there would start that agent as well, twice
 * when it is the one asked for. So a missing room is created with the agent as its only
 * dispatch (`CreateRoomRequest.agents`), which starts that agent and no other; an existing room
 * gets a dispatch, which starts exactly one job.
 */
import { AgentDispatchClient, RoomAgentDispatch, RoomServiceClient } from 'livekit-server-sdk';
import { InvalidOptionError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { resolveServerCredentials, type ServerCredentials } from '../options/sources.ts';
import type { Flags } from './flags.ts';

/** `server`: the `--url`/`--api-key`/`--api-secret` flags, else the environment, as a worker's. */
export async function createDispatch(
  flags: Flags,
  server: Partial<ServerCredentials>,
  log: Logger,
): Promise<number> {
  const room = flags.room;
  if (typeof room !== 'string' || room === '') throw new InvalidOptionError('--room', 'required');
  const agentName = String(flags['agent-name'] ?? '');
  const metadata = String(flags.metadata ?? '');
  const { wsUrl, apiKey, apiSecret } = resolveServerCredentials(server, process.env);
  const http = wsUrl.replace(/^ws/, 'http');
  const rooms = new RoomServiceClient(http, apiKey, apiSecret);
  const dispatches = new AgentDispatchClient(http, apiKey, apiSecret);
  const agent = agentName === '' ? 'the automatic agent' : `agent "${agentName}"`;

  const existing = await rooms.listRooms([room]);
  if (existing.length === 0) {
    await rooms.createRoom({
      name: room,
      agents: [new RoomAgentDispatch({ agentName, metadata })],
    });
    const [d] = await dispatches.listDispatch(room);
    log.info(`room ${room} created with ${agent} as its only dispatch`, {
      room,
      agentName,
      dispatchId: d?.id,
    });
    return 0;
  }
  const d = await dispatches.createDispatch(room, agentName, { metadata });
  log.info(`dispatch of ${agent} created in the existing room ${room}`, {
    room,
    agentName: d.agentName,
    dispatchId: d.id,
  });
  return 0;
}
