/** agentstate's Prometheus text on its health server (/metrics): the availability answers. */

/**
 * `agentstate_availability_answers_total` by `decision` (summed over any other label), or
 * undefined when the endpoint cannot be read.
 */
export async function availabilityAnswers(
  port: number,
): Promise<Record<string, number> | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
      signal: AbortSignal.timeout(5_000),
    });
    if (!res.ok) return undefined;
    const counts: Record<string, number> = {};
    for (const line of (await res.text()).split('\n')) {
      const m = /^agentstate_availability_answers_total\{([^}]*)\}\s+(\S+)/.exec(line);
      const decision = m && /decision="([^"]*)"/.exec(m[1]!)?.[1];
      if (!m || decision === undefined || decision === null) continue;
      counts[decision] = (counts[decision] ?? 0) + Number(m[2]);
    }
    return counts;
  } catch {
    return undefined;
  }
}

/** after − before, per decision, keeping only the ones that moved. */
export function delta(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}
