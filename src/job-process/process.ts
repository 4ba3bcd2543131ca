/**
 * `JobProcess`: what `prewarmFnc` receives, once per process, and what every job run in that
 * process later sees as `ctx.proc`. `userdata` carries what prewarm loaded (models, clients) to
 * the job without loading it again.
 */
export class JobProcess {
  /** Anything prewarm wants to hand to the job; the same object the job sees. */
  readonly userdata: Record<string, unknown> = {};
  /** The OS process id of this job process. */
  readonly pid: number;

  constructor(pid: number = process.pid) {
    this.pid = pid;
  }
}
