/** The JWT a worker presents on `/agent`: the `agent` video grant is all the server checks. */

export async function workerToken(apiKey: string, apiSecret: string): Promise<string> {
  // Loaded here, not at the top: the package index (which every job process imports with the
  // user's agent file) reaches this module, and only the worker mints tokens: the SDK would
  // cost every job process's start (docs/measurements.md).
  const { AccessToken } = await import('livekit-server-sdk');
  const at = new AccessToken(apiKey, apiSecret, { ttl: '10m' });
  at.addGrant({ agent: true });
  return at.toJwt();
}
