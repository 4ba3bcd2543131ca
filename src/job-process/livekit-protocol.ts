/**
 * Child side: the `@livekit/protocol` classes a job process needs (`Job` and friends), from the
 * package's CommonJS build. rtc-node's FFI bindings load `@bufbuild/protobuf` as CommonJS; the
 * protocol's ES module build would load a second, ESM copy of that runtime (about 50 modules),
 * which every job process would pay for at start (docs/measurements.md). Through `require`, both share
 * one copy. The types are the package's own; the values behave the same (protobuf-es messages
 * compare and serialise by content). One difference: `instanceof` against a class imported from
 * the ES build is false for these objects.
 */
import { createRequire } from 'node:module';
import type * as ProtocolTypes from '@livekit/protocol';

const protocol = createRequire(import.meta.url)('@livekit/protocol') as typeof ProtocolTypes;

// Each name is both the value (from the CommonJS build) and the package's own type.
export const Job = protocol.Job;
export type Job = ProtocolTypes.Job;
export const JobType = protocol.JobType;
export type JobType = ProtocolTypes.JobType;
