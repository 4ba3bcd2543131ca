/**
 * Child side: the `@livekit/protocol` classes a job process needs (`Job` and friends). In a job
 * process that loaded rtc-node from the worker's bundle they come from that bundle, which holds
 * them without the rest of the package (`./rtc-preload.ts`); otherwise from the package's
 * CommonJS build. rtc-node's FFI bindings load `@bufbuild/protobuf` as CommonJS; the
 * protocol's ES module build would load a second, ESM copy of that runtime (about 50 modules),
 * which every job process would pay for at start (docs/measurements.md). Through `require`, both share
 * one copy. The types are the package's own; the values behave the same (protobuf-es messages
 * compare and serialise by content). One difference: `instanceof` against a class imported from
 * the ES build is false for these objects.
 */
import { createRequire } from 'node:module';
import type * as ProtocolTypes from '@livekit/protocol';
import { bundledJobProtocol, type JobProtocol } from './rtc-preload.ts';

const protocol: JobProtocol =
  bundledJobProtocol() ??
  (createRequire(import.meta.url)('@livekit/protocol') as typeof ProtocolTypes);

// Each name is both the value (from the CommonJS build) and the package's own type.
export const Job = protocol.Job;
export type Job = ProtocolTypes.Job;
export const JobType = protocol.JobType;
export type JobType = ProtocolTypes.JobType;
