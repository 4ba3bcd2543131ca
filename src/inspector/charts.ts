/**
 * The charts of `machines/` and how each becomes a diagram file; shared by `npm run charts`
 * and the test that keeps `visualizations/` in step with the machines.
 */
import type { AnyStateMachine } from 'xstate';
import { jobProcessMachine } from '../../machines/jobProcess.machine.ts';
import { jobRequestMachine } from '../../machines/jobRequest.machine.ts';
import { workerMachine } from '../../machines/worker.machine.ts';
import { layoutChart } from './chart-layout.ts';
import { serializeMachine } from './chart-model.ts';
import { renderChartSvg } from './chart-svg.ts';

export const CHARTS: readonly { file: string; machine: AnyStateMachine }[] = [
  { file: 'worker.svg', machine: workerMachine },
  { file: 'jobProcess.svg', machine: jobProcessMachine },
  { file: 'jobRequest.svg', machine: jobRequestMachine },
];

export async function renderChartFile(machine: AnyStateMachine): Promise<string> {
  return renderChartSvg(await layoutChart(serializeMachine(machine)));
}
