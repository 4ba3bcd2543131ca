/**
 * `agentstate/charts`: the pure statecharts, for visualizers, the Stately editor and model-based
 * tests of your own. A separate entry point, so importing `agentstate` (which every job process
 * does through the agent file) does not load them.
 */
export { workerMachine } from '../machines/worker.machine.ts';
export { jobProcessMachine } from '../machines/jobProcess.machine.ts';
export { jobRequestMachine } from '../machines/jobRequest.machine.ts';
