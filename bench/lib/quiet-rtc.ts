/**
 * Imported first by bench/run.ts: @livekit/rtc-node logs at debug level to stdout unless
 * NODE_ENV is 'production'. The workers get the original value back (workers.ts).
 */
export const ORIGINAL_NODE_ENV = process.env.NODE_ENV;
process.env.NODE_ENV ??= 'production';
