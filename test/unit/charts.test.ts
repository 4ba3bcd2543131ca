import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { workerMachine } from '../../machines/worker.machine.ts';
import { serializeMachine } from '../../src/inspector/chart-model.ts';
import { CHARTS, renderChartFile } from '../../src/inspector/charts.ts';

describe('chart diagrams in visualizations/', () => {
  it.each(CHARTS)('$file is up to date with machines/ (run `npm run charts`)', async (chart) => {
    const onDisk = await readFile(
      new URL(`../../visualizations/${chart.file}`, import.meta.url),
      'utf8',
    );
    expect(
      onDisk === (await renderChartFile(chart.machine)),
      `${chart.file} is stale: npm run charts`,
    ).toBe(true);
  });

  it('includes `always` transitions, which XState’s JSON definition drops', () => {
    const always = serializeMachine(workerMachine).edges.filter((e) => e.eventType === '');
    expect(always.map((e) => `${e.source} → ${e.targets.join()} [${e.guard}]`)).toEqual([
      'worker.lifecycle.registered.available → worker.lifecycle.registered.full [!takesOffers]',
      'worker.lifecycle.registered.full → worker.lifecycle.registered.available [takesOffers]',
      'worker.lifecycle.draining → worker.lifecycle.stopping [noActiveJobs]',
      'worker.lifecycle.stopping → worker.lifecycle.stopped [noProcessesLeft]',
      'worker.processes.warming → worker.processes.closed [isStopping]',
      'worker.processes.backingOff → worker.processes.closed [isStopping]',
    ]);
  });
});
