/**
 * What a job process was doing when the worker ends it: its JavaScript stack, read through the
 * V8 inspector. It works while the child's JavaScript is busy (a `for (;;) {}` included), which
 * a diagnostic report asked for by signal does not on Node 20 (its signal handler is JavaScript,
 * so it waits for the busy loop like everything else): SIGUSR1 starts the child's inspector from
 * a V8 interrupt, and `Debugger.pause` is one too.
 *
 * The child listens on an ephemeral loopback port (`process.debugPort = 0`, set in
 * `../job-process/job-entry.ts`), and only from the moment this capture signals it, for the
 * second or so until the host's SIGTERM. The port is found in `/proc` (the new loopback
 * listener of that pid), or from the address Node may print on the child's stderr, which the
 * host relays (`./child-output.ts`) and hands to `inspectorUrl`.
 */
import type { ChildProcess } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';

/** One frame, as `functionName (file:line:column)`. */
export type StackFrame = string;

export interface StackCaptureOptions {
  child: ChildProcess;
  /** Resolves with the child's inspector address once it printed it (`watchInspectorUrl`). */
  inspectorUrl: Promise<string>;
  /** The whole capture's deadline. */
  timeoutMs: number;
  /** Cancels the capture (the chart asked for SIGKILL meanwhile). */
  signal?: AbortSignal;
}

/** Why no stack came back, as the record says it. */
export type StackCaptureResult =
  { ok: true; frames: StackFrame[]; tookMs: number } | { ok: false; error: string };

const URL_PATTERN = /Debugger listening on (ws:\/\/\S+)/;

/** The inspector address in a line of the child's stderr, if it is that line. */
export function inspectorUrlIn(line: string): string | undefined {
  return URL_PATTERN.exec(line)?.[1];
}

/** Node's two lines around the address, which are noise in the worker's output. */
export function isInspectorBanner(line: string): boolean {
  return (
    URL_PATTERN.test(line) ||
    line.startsWith('For help, see: https://nodejs.org/en/docs/inspector') ||
    line === 'Debugger attached.'
  );
}

interface CdpMessage {
  id?: number;
  method?: string;
  params?: {
    scriptId?: string;
    url?: string;
    callFrames?: {
      functionName: string;
      url?: string;
      location: { scriptId: string; lineNumber: number; columnNumber?: number };
    }[];
  };
}

/**
 * Signals the child and reads its stack. Never rejects: a process that cannot be inspected
 * (gone, inspector disabled, too slow) gives `{ ok: false }` with the reason.
 */
export async function captureJsStack(o: StackCaptureOptions): Promise<StackCaptureResult> {
  const started = performance.now();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('timed out')), o.timeoutMs);
  const onOuterAbort = () => controller.abort(new Error('cancelled'));
  o.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let socket: import('ws').WebSocket | undefined;
  try {
    const pid = o.child.pid;
    if (pid === undefined) return { ok: false, error: 'the process has no pid' };
    const before = await listeningPorts(pid);
    if (!o.child.kill('SIGUSR1')) return { ok: false, error: 'the process could not be signalled' };
    const url = await abortable(
      Promise.race([o.inspectorUrl, inspectorUrlOf(pid, before, controller.signal)]),
      controller.signal,
    );
    const { WebSocket } = await import('ws');
    const ws = new WebSocket(url);
    socket = ws;
    const frames = await abortable(
      new Promise<StackFrame[]>((resolve, reject) => {
        const scripts = new Map<string, string>();
        ws.once('error', reject);
        ws.once('close', () => reject(new Error('the inspector closed')));
        ws.once('open', () => {
          ws.send(JSON.stringify({ id: 1, method: 'Debugger.enable' }));
          ws.send(JSON.stringify({ id: 2, method: 'Debugger.pause' }));
        });
        ws.on('message', (raw: Buffer) => {
          const m = JSON.parse(raw.toString()) as CdpMessage;
          if (m.method === 'Debugger.scriptParsed' && m.params?.scriptId) {
            scripts.set(m.params.scriptId, m.params.url ?? '');
          } else if (m.method === 'Debugger.paused') {
            resolve(
              (m.params?.callFrames ?? []).map((f) => {
                const file = f.url || scripts.get(f.location.scriptId) || '<anonymous>';
                const where = `${file}:${f.location.lineNumber + 1}:${(f.location.columnNumber ?? 0) + 1}`;
                return `${f.functionName || '<anonymous>'} (${where})`;
              }),
            );
          }
        });
      }),
      controller.signal,
    );
    return { ok: true, frames, tookMs: Math.round(performance.now() - started) };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onOuterAbort);
    socket?.removeAllListeners();
    // An error listener stays: a socket torn down while connecting emits one.
    socket?.on('error', () => {});
    socket?.terminate();
  }
}

/**
 * The loopback TCP ports `pid` listens on, from `/proc` (Linux): its socket inodes matched
 * against its network namespace's table. Empty where there is no `/proc`.
 */
async function listeningPorts(pid: number): Promise<Set<number>> {
  const ports = new Set<number>();
  try {
    const fds = await readdir(`/proc/${pid}/fd`);
    const inodes = new Set<string>();
    await Promise.all(
      fds.map(async (fd) => {
        const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
        const m = /^socket:\[(\d+)\]$/.exec(target);
        if (m) inodes.add(m[1]!);
      }),
    );
    const table = await readFile(`/proc/${pid}/net/tcp`, 'utf8');
    for (const line of table.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is `0100007F:PORT` for 127.0.0.1; state 0A is LISTEN; column 9 the inode.
      if (cols[3] !== '0A' || !inodes.has(cols[9] ?? '')) continue;
      const [addr, port] = (cols[1] ?? '').split(':');
      if (addr === '0100007F' && port) ports.add(parseInt(port, 16));
    }
  } catch {
    // No /proc, or the process is gone: nothing to find.
  }
  return ports;
}

/**
 * Waits for the inspector's port (a loopback listener the process did not have before the
 * signal) and asks it for its WebSocket address.
 */
async function inspectorUrlOf(
  pid: number,
  before: Set<number>,
  signal: AbortSignal,
): Promise<string> {
  while (!signal.aborted) {
    for (const port of await listeningPorts(pid)) {
      if (before.has(port)) continue;
      const res = await fetch(`http://127.0.0.1:${port}/json/list`, { signal }).catch(
        () => undefined,
      );
      const targets = (await res?.json().catch(() => undefined)) as
        { webSocketDebuggerUrl?: string }[] | undefined;
      const url = targets?.[0]?.webSocketDebuggerUrl;
      if (url) return url;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw signal.reason as Error;
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
