/**
 * Bench-only instrumentation for Node workers (agentstate and @livekit/agents both speak to the
 * server through the `ws` package): prints one JSON line `{"bench":"assignment",jobId,t}` to
 * stdout when a `JobAssignment` frame arrives on the worker's socket (stamped before the framework
 * handles it, written after). Used for the "assignment → entrypoint called" figure. The agents-js fixture carries
 * its own copy (it resolves `ws` and `@livekit/protocol` from bench/peers/js).
 */
import { appendFileSync } from 'node:fs';

export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

// Node loads `perf_hooks` (eight internal modules, ~1 ms) on the first use of the `performance`
// global. Done here, when the agent file is imported (a job process's prewarm), the entrypoint's
// first stamp does not measure that load.
nowMs();

/**
 * Appends `{jobId,publishedAt}` to the file BENCH_STAMPS names (if set) once the data message's
 * publish call has resolved: that moment cannot travel in the message itself. A file rather than
 * stdout because each framework treats its job processes' output differently.
 */
export function stampPublished(jobId: string): void {
  const file = process.env.BENCH_STAMPS;
  if (file) appendFileSync(file, JSON.stringify({ jobId, publishedAt: nowMs() }) + '\n');
}

let installed = false;

/**
 * Call it in the worker process only. `@livekit/protocol` (its ES build, with a second copy of
 * @bufbuild/protobuf) and `ws` are imported here, not at the top, so a job process importing the
 * agent file does not load them: they cost a job process ~150 ms of CPU at every start.
 */
export async function instrumentAssignments(): Promise<void> {
  if (installed) return;
  installed = true;
  const [{ ServerMessage }, { WebSocket }] = await Promise.all([
    import('@livekit/protocol'),
    import('ws'),
  ]);
  // Called with `emit.call(this, …)` below: the original method, bound to each socket.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const emit = WebSocket.prototype.emit;
  WebSocket.prototype.emit = function (
    this: WebSocket,
    event: string | symbol,
    ...args: unknown[]
  ) {
    // Only the stamp is taken before the framework sees the frame: decoding it and writing the
    // line wait until after the framework's own handling (setImmediate), so the measurement does
    // not sit on the hand-off it measures. 0x1a is the tag of ServerMessage's `assignment` field
    // (3, length-delimited), so other frames cost one comparison.
    if (event === 'message' && args[0] instanceof Buffer && args[0][0] === 0x1a) {
      const t = nowMs();
      const frame = args[0];
      setImmediate(() => {
        try {
          const msg = ServerMessage.fromBinary(frame);
          if (msg.message.case === 'assignment') {
            const jobId = msg.message.value.job?.id;
            process.stdout.write(JSON.stringify({ bench: 'assignment', jobId, t }) + '\n');
          }
        } catch {
          // not a server message
        }
      });
    }
    return emit.call(this, event, ...args);
  } as typeof emit;
}
