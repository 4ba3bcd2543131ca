/** The live inspector (`agent dev`, `agent start --inspect`) and chart diagrams. */
export { startInspector } from './server.ts';
export type { Inspector } from './server.ts';
