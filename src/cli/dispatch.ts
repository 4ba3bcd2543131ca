/** `agent dispatch --room NAME [--agent-name X]`: creates an explicit dispatch on the server. */
import { AgentDispatchClient } from 'livekit-server-sdk';
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
  const { wsUrl, apiKey, apiSecret } = resolveServerCredentials(server, process.env);
  const http = wsUrl.replace(/^ws/, 'http');
  const client = new AgentDispatchClient(http, apiKey, apiSecret);
  const d = await client.createDispatch(room, String(flags['agent-name'] ?? ''), {
    metadata: String(flags.metadata ?? ''),
  });
  log.info('dispatch created', { dispatchId: d.id, room, agentName: d.agentName });
  return 0;
}
