/**
 * The child side of a job process: the module tinypool loads in the forked process, whose
 * default export is the one long task the host runs in it. It loads `@livekit/rtc-node` from the
 * worker's prebuilt bundle when there is one (`./rtc-preload.ts`), and only then imports the rest
 * of the job process (`./job-dialogue.ts`), whose modules import rtc-node: statically imported
 * here, they would have loaded it file by file before the task said where the bundle is.
 */
import type { JobProcessTask } from '../../machines/jobIpc.contract.ts';
import { preloadRtcNode } from './rtc-preload.ts';

/**
 * Ctrl-C reaches the whole process group; the worker decides how its jobs end (drain), so a job
 * process ignores SIGINT. SIGTERM keeps its default (exit): it is the host's second step.
 */
process.on('SIGINT', () => {});

export default async function runJobProcess(task: JobProcessTask): Promise<string> {
  const rtc = preloadRtcNode(task.rtcBundle);
  const { runJobDialogue } = await import('./job-dialogue.ts');
  return runJobDialogue(task, rtc);
}
