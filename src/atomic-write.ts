/**
 * Writes a file by rename, so a reader (another process starting meanwhile) sees the old file
 * or the new one, never half of one. Used for everything the framework writes for its processes
 * to load: compiled agents, rtc-node's bundle, its manifest and its code cache.
 */
import { renameSync, writeFileSync } from 'node:fs';

let writes = 0;

export function writeFileAtomically(file: string, contents: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}-${++writes}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, file);
}
