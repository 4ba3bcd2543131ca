/**
 * The stop signals a job process ignores: they reach it only when its whole process group or
 * unit is signalled, and are meant for its worker, which drains (`./job-entry.ts`).
 */
export const STOP_SIGNALS_IGNORED = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
