/** Entry of the `agent` bin (bin/agent.js runs its build, dist/src/cli/main.js). */
import { runProgram } from './program.ts';

const code = await runProgram(process.argv);
process.exit(code);
