/**
 * `npm run charts`: writes `visualizations/<machine>.svg` for every chart in `machines/`.
 * `test/unit/charts.test.ts` fails when a chart changed and its diagram was not regenerated.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { CHARTS, renderChartFile } from '../src/inspector/charts.ts';

const dir = fileURLToPath(new URL('../visualizations/', import.meta.url));
await mkdir(dir, { recursive: true });
for (const chart of CHARTS) {
  await writeFile(`${dir}${chart.file}`, await renderChartFile(chart.machine));
  console.log(`visualizations/${chart.file}`);
}
