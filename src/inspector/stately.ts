/**
 * `--inspect=stately`: hands the worker's inspection stream to Stately's own inspector instead
 * of our local page. **This sends data to stately.ai** (through Stately's relay): users opt in
 * explicitly. Context and events are redacted and bounded exactly as for the local page, so
 * tokens and the API secret never leave the machine.
 */
import type { InspectionEvent } from 'xstate';
import type { Logger } from '../log/logger.ts';
import { CONTEXT_LIMITS, EVENT_LIMITS, safeJson } from './safe-json.ts';

export interface StatelyInspector {
  inspect: (event: InspectionEvent) => void;
  close(): Promise<void>;
}

/** The sanitizers Stately's inspector applies before anything is sent. */
export function statelySanitizers(secrets: readonly string[]) {
  return {
    sanitizeContext: (context: unknown) =>
      safeJson(context, CONTEXT_LIMITS, secrets) as Record<string, unknown>,
    sanitizeEvent: (event: { type: string }) => {
      const clean = safeJson(event, EVENT_LIMITS, secrets);
      return (clean && typeof clean === 'object' ? clean : { type: event.type }) as {
        type: string;
      };
    },
  };
}

export async function startStatelyInspector(
  log: Logger,
  secrets: readonly string[],
): Promise<StatelyInspector> {
  // Loaded only when asked for: it opens a connection to Stately's relay on creation.
  const { createSkyInspector } = await import('@statelyai/inspect');
  log.warn(
    'inspector: sending the worker state (redacted) to stately.ai, as --inspect=stately asks',
  );
  const inspector = createSkyInspector({
    ...statelySanitizers(secrets),
    onerror: (err: unknown) => log.warn('stately inspector connection failed', { error: err }),
  });
  return {
    inspect: (event) => inspector.inspect.next?.(event),
    close: async () => inspector.stop(),
  };
}
