/** Entry of the `agent` bin (loaded by bin/agent.js once TypeScript support is registered). */
import { runProgram } from './program.ts';

const code = await runProgram(process.argv);
process.exit(code);
