/** `agent dispatch --room NAME [--agent-name X]`: creates an explicit dispatch on the server. */
import { AgentDispatchClient } from 'livekit-server-sdk';
import { InvalidOptionError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Flags } from './flags.ts';

export async function createDispatch(flags: Flags, log: Logger): Promise<number> {
  const room = flags.room;
  if (typeof room !== 'string' || room === '') throw new InvalidOptionError('--room', 'required');
  const url = (flags.url as string | undefined) ?? process.env.LIVEKIT_URL;
  const apiKey = (flags['api-key'] as string | undefined) ?? process.env.LIVEKIT_API_KEY;
  const apiSecret = (flags['api-secret'] as string | undefined) ?? process.env.LIVEKIT_API_SECRET;
  if (!url) throw new InvalidOptionError('--url', 'required (or set LIVEKIT_URL)');
  if (!apiKey || !apiSecret) {
    throw new InvalidOptionError(
      '--api-key',
      'API key and secret are required (or set LIVEKIT_API_KEY/SECRET)',
    );
  }
  const http = url.replace(/^ws/, 'http');
  const client = new AgentDispatchClient(http, apiKey, apiSecret);
  const d = await client.createDispatch(room, String(flags['agent-name'] ?? ''), {
    metadata: String(flags.metadata ?? ''),
  });
  log.info('dispatch created', { dispatchId: d.id, room, agentName: d.agentName });
  return 0;
}
