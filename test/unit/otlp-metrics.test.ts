/**
 * The metrics `/metrics` serves, as OTLP data points (src/telemetry/otel-metrics.ts): the same
 * names and labels; counters as cumulative monotonic sums, gauges as gauges, histograms with
 * per-bucket counts over the same finite boundaries, sum and count.
 */
import {
  DataPointType,
  type HistogramMetricData,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { otlpMetricsOf } from '../../src/telemetry/otel-metrics.ts';

function byName(metrics: MetricData[], name: string): MetricData {
  const m = metrics.find((x) => x.descriptor.name === name);
  if (!m) throw new Error(`no metric ${name}`);
  return m;
}

describe('the Prometheus registry over OTLP', () => {
  it('gives counters, gauges and histograms with their labels and values', async () => {
    const registry = new Registry();
    const registers = [registry];
    const jobs = new Counter({
      name: 'x_jobs_total',
      help: 'jobs',
      labelNames: ['outcome'],
      registers,
    });
    jobs.inc({ outcome: 'success' }, 3);
    jobs.inc({ outcome: 'failed' });
    new Gauge({ name: 'x_load', help: 'load', registers }).set(0.25);
    const h = new Histogram({
      name: 'x_answer_seconds',
      help: 'answers',
      labelNames: ['decision'],
      buckets: [0.1, 1],
      registers,
    });
    for (const v of [0.05, 0.5, 0.7, 3]) h.observe({ decision: 'accepted' }, v);

    const metrics = await otlpMetricsOf(registry, [0, 0]);
    const counter = byName(metrics, 'x_jobs_total');
    expect(counter).toMatchObject({ dataPointType: DataPointType.SUM, isMonotonic: true });
    expect(counter.dataPoints.map((p) => [p.attributes, p.value])).toEqual(
      expect.arrayContaining([
        [{ outcome: 'success' }, 3],
        [{ outcome: 'failed' }, 1],
      ]),
    );
    const gauge = byName(metrics, 'x_load');
    expect(gauge.dataPointType).toBe(DataPointType.GAUGE);
    expect(gauge.dataPoints[0]?.value).toBe(0.25);
    const hist = byName(metrics, 'x_answer_seconds') as HistogramMetricData;
    expect(hist.dataPointType).toBe(DataPointType.HISTOGRAM);
    expect(hist.dataPoints).toHaveLength(1);
    const p = hist.dataPoints[0]!;
    expect(p.attributes).toEqual({ decision: 'accepted' });
    // ≤ 0.1: one; (0.1, 1]: two; above 1: one.
    expect(p.value.buckets).toEqual({ boundaries: [0.1, 1], counts: [1, 2, 1] });
    expect(p.value.count).toBe(4);
    expect(p.value.sum).toBeCloseTo(4.25);
    expect(metrics.map((m) => m.descriptor.description)).toContain('answers');
  });
});
