/**
 * How the worker chart's emitted records become log lines: one record per event, tagged with
 * the job's room and process when the event is about a job.
 */
import type { WorkerContext } from '../../machines/worker.contract.ts';
import type { WorkerEmitted } from '../../machines/worker.contract.ts';
import type { LogFields, Logger } from '../log/logger.ts';

/**
 * A listener for the chart's `'*'` events that logs each one. It is handed the context after the
 * event; that is already past it (a job that just ended is gone), so the previous view is kept.
 */
export function emittedLogger(
  log: Logger,
  context: () => WorkerContext,
  extraJobFields?: (jobId: string) => LogFields,
): (e: WorkerEmitted) => void {
  let knownJobs = new Map<string, JobLogFields>();
  return (ev) => {
    const current = jobLogFields(context());
    const jobId = 'jobId' in ev ? ev.jobId : undefined;
    let jobFields: LogFields =
      jobId === undefined ? {} : (current.get(jobId) ?? knownJobs.get(jobId) ?? {});
    if (jobId !== undefined && extraJobFields)
      jobFields = { ...jobFields, ...extraJobFields(jobId) };
    knownJobs = current;
    logEmitted(log.child(jobFields), ev);
  };
}

type JobLogFields = { roomName?: string; pid?: number };

function jobLogFields(ctx: WorkerContext): Map<string, JobLogFields> {
  const out = new Map<string, JobLogFields>();
  for (const j of Object.values(ctx.jobs)) {
    out.set(j.jobId, {
      roomName: j.job.room?.name,
      pid: j.procId ? ctx.procs[j.procId]?.pid : undefined,
    });
  }
  return out;
}

function logEmitted(log: Logger, e: WorkerEmitted): void {
  switch (e.type) {
    case 'registered':
      log.info('registered with the server', { serverVersion: e.serverVersion });
      return;
    case 'connectionLost':
      log.warn('server connection lost; will retry', { reason: e.reason });
      return;
    case 'availabilityRequested':
      log.debug('job offered', { jobId: e.jobId, roomName: e.roomName });
      return;
    case 'statusReported':
      log.debug('status reported', { status: e.status, load: e.load, jobCount: e.jobCount });
      return;
    case 'requestAnswered':
      if (e.decision === 'accepted') log.info('job accepted', { jobId: e.jobId });
      else log.info('job declined', { jobId: e.jobId, decision: e.decision, reason: e.reason });
      return;
    case 'jobLaunched':
      log.info('job launched', { jobId: e.jobId, procId: e.procId });
      return;
    case 'jobRetried':
      log.warn('job process died before the job started; retrying on another process', {
        jobId: e.jobId,
        procId: e.procId,
        reason: e.reason,
      });
      return;
    case 'jobEnded':
      (e.outcome === 'success' ? log.info : log.warn)('job ended', {
        jobId: e.jobId,
        outcome: e.outcome,
        reason: e.reason,
        ending: e.ending,
      });
      return;
    case 'processReused':
      log.debug('job process kept for another job', { procId: e.procId });
      return;
    case 'processExited':
      (e.failed ? log.warn : log.debug)('job process exited', {
        procId: e.procId,
        pid: e.pid,
        reason: e.reason,
      });
      return;
    case 'stopped':
      log.info('worker stopped', { reason: e.reason });
      return;
  }
}
