/**
 * What the recovery tests (test/e2e/recovery*.test.ts) read from the recovery fixture
 * (test/fixtures/e2e/recovery-agent.ts): its `recovery job report` log record, and the `tick`
 * data messages its jobs send to the room.
 */
import { RoomEvent, type Room } from '@livekit/rtc-node';
import type { LogRecord } from './agent-process.ts';
import { until } from './cli-agent.ts';
import type { FixtureWorker } from './e2e-workers.ts';

/** A job's `recovery job report`: once connected, with its identity, pid and `ctx.recovery`. */
export interface RecoveryReport extends LogRecord {
  jobId: string;
  room: string;
  identity: string;
  pid: number;
  recovery: {
    previousJobId: string;
    attempt: number;
    firstStartedAt: number;
    checkpoint: { tick: number } | null;
  } | null;
}

/** The next report from `room` on `w` that `pred` accepts. */
export function recoveryReport(
  w: FixtureWorker,
  room: string,
  pred: (r: RecoveryReport) => boolean = () => true,
  timeoutMs = 20_000,
): Promise<RecoveryReport> {
  return w.waitForLog(
    (r) => r.message === 'recovery job report' && r.room === room && pred(r as RecoveryReport),
    `a recovery job report from ${room} on ${w.label}`,
    timeoutMs,
  ) as Promise<RecoveryReport>;
}

export interface Tick {
  tick: number;
  attempt: number;
  identity: string;
}

/** The data messages the user in `room` gets from the agent (topic `tick`), as they come. */
export function ticks(room: Room): Tick[] {
  const got: Tick[] = [];
  room.on(RoomEvent.DataReceived, (payload, _p, _kind, topic) => {
    if (topic === 'tick') got.push(JSON.parse(new TextDecoder().decode(payload)) as Tick);
  });
  return got;
}

/** Waits for the ticks (or anything polled) to satisfy `pred`, 20 s at most. */
export async function untilTicks(pred: () => boolean, what: string, timeoutMs = 20_000) {
  await until(pred, what, timeoutMs);
}
