#!/usr/bin/env node
// The `agent` bin: the compiled command line, on plain node. A TypeScript agent file is compiled
// once by the worker (dist/src/agent-file/compile-typescript.js), so no loader is registered here.
import { setFlagsFromString } from 'node:v8';

// The worker's way from an assignment to its job process runs once per job, seconds or minutes
// apart: too rarely for V8 to compile it beyond its interpreter, and far enough apart for V8 to
// drop its bytecode in between (parsed again at the next job). Baseline code from the first run,
// kept: the chart's step on an assignment takes ~0.4 instead of ~0.53 ms of CPU (docs/
// architecture.md, "The assignment's way"). Set before anything else loads; job processes get
// no flags (they are started with their own `execArgv`, this does not reach them).
setFlagsFromString('--always-sparkplug');
setFlagsFromString('--no-flush-bytecode');
await import('../dist/src/cli/main.js');
