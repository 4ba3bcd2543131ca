#!/usr/bin/env node
// The `agent` bin: the compiled command line, on plain node. A TypeScript agent file is compiled
// once by the worker (dist/src/agent-file/compile-typescript.js), so no loader is registered here.
await import('../dist/src/cli/main.js');
