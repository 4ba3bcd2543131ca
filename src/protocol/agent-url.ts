/** Builds the worker endpoint `ws(s)://host[:port][/prefix]/agent` from a LiveKit URL. */
export function agentEndpoint(serverUrl: string): URL {
  const url = new URL(serverUrl);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/agent`;
  url.search = '';
  url.hash = '';
  return url;
}
