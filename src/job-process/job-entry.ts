/**
 * The child side of a job process: the module tinypool loads in the forked process, whose
 * default export is the one long task the host runs in it. It loads `@livekit/rtc-node` from the
 * worker's prebuilt bundle when there is one (`./rtc-preload.ts`), and only then imports the rest
 * of the job process (`./job-dialogue.ts`), whose modules import rtc-node: statically imported
 * here, they would have loaded it file by file before the task said where the bundle is.
 */
import { isHostMessage, type JobProcessTask } from '../../machines/jobIpc.contract.ts';
import { preloadRtcNode } from './rtc-preload.ts';
import { STOP_SIGNALS_IGNORED } from './stop-signals-ignored.ts';
import { exitAfterFlush } from './exit-flush.ts';

/**
 * A stop signal that reaches a job process was meant for its worker: a terminal's Ctrl-C or
 * hang-up, `kill -- -PGID`, `timeout`, systemd's default `KillMode=control-group` and many
 * supervisors signal every process of the group or unit. The worker decides how its jobs end
 * (it drains), so a job process ignores them all. Its host stops it over IPC (`terminate`, below)
 * or with SIGKILL; a process whose worker is gone ends itself (`./job-dialogue.ts`, orphan grace).
 */
// The host's `--import` has done it before anything loaded (src/job-host/process-host.ts);
// again here for a process started with other flags.
for (const signal of STOP_SIGNALS_IGNORED) process.on(signal, () => {});

/**
 * The host's polite stop, once the job has ended or its shutdown deadline passed. Listened for
 * here, for the process's whole life: also before the dialogue starts and after it returned.
 */
process.on('message', (m: unknown) => {
  if (isHostMessage(m) && m.type === 'terminate') exitAfterFlush(0);
});

/**
 * When the worker ends this process as hung, it first reads its JavaScript stack through the
 * inspector, which SIGUSR1 starts (`../job-host/js-stack.ts`): on an ephemeral loopback port,
 * never the fixed 9229 that a second process would collide on.
 */
process.debugPort = 0;

export default async function runJobProcess(task: JobProcessTask): Promise<string> {
  const rtc = preloadRtcNode(task.rtcBundle);
  const { runJobDialogue } = await import('./job-dialogue.ts');
  return runJobDialogue(task, rtc);
}
