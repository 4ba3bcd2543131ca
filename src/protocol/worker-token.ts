/** The JWT a worker presents on `/agent`: the `agent` video grant is all the server checks. */
import { AccessToken } from 'livekit-server-sdk';

export async function workerToken(apiKey: string, apiSecret: string): Promise<string> {
  const at = new AccessToken(apiKey, apiSecret, { ttl: '10m' });
  at.addGrant({ agent: true });
  return at.toJwt();
}
