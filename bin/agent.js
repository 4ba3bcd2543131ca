#!/usr/bin/env node
// The `agent` bin: registers TypeScript support (so `agent dev ./agent.ts` needs no build
// step and job processes load the same sources), then hands over to the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
