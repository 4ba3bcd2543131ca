/**
 * The worker's metrics over OTLP (`OTEL_METRICS_EXPORTER=otlp`): the very registry `/metrics`
 * serves (src/http/metrics.ts), read at each export and translated to OTLP data points by a
 * `MetricProducer`, so the two can never disagree. Counters become cumulative monotonic sums,
 * gauges gauges, histograms explicit-bucket histograms. Every `OTEL_METRIC_EXPORT_INTERVAL`
 * (default 60 s). Imported by the health server only when asked for.
 */
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { getNumberFromEnv, hrTime } from '@opentelemetry/core';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import type { Registry } from 'prom-client';
import { withDeadline } from '../clock.ts';
import type { Logger } from '../log/logger.ts';
import { VERSION } from '../version.ts';
import { otelResource, TRACER_NAME } from './otel-sdk.ts';

type PromMetric = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];
type PromValue = PromMetric['values'][number] & { metricName?: string };

/** Starts exporting `registry`; returns the stop, which sends a last export within its deadline. */
export function startOtlpMetrics(registry: Registry, log: Logger): () => Promise<void> {
  const startTime = hrTime();
  const producer: MetricProducer = {
    collect: async (): Promise<CollectionResult> => {
      const metrics = await otlpMetricsOf(registry, startTime);
      return {
        resourceMetrics: {
          resource: otelResource('worker'),
          scopeMetrics: [{ scope: { name: TRACER_NAME, version: VERSION }, metrics }],
        },
        errors: [],
      };
    },
  };
  const interval = getNumberFromEnv('OTEL_METRIC_EXPORT_INTERVAL');
  const reader = new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter(),
    metricProducers: [producer],
    ...(interval !== undefined && interval > 0 ? { exportIntervalMillis: interval } : {}),
  });
  const provider = new MeterProvider({ resource: otelResource('worker'), readers: [reader] });
  log.debug('sending metrics over OTLP');
  return () =>
    withDeadline(provider.shutdown(), 2_000, 'flushing OTLP metrics').catch(() => undefined);
}

/** The registry's metrics as OTLP metric data, cumulative since `startTime`. */
export async function otlpMetricsOf(registry: Registry, startTime: HrTime): Promise<MetricData[]> {
  const now = hrTime();
  return (await registry.getMetricsAsJSON()).flatMap((m) => translate(m, startTime, now));
}

function labelsOf(v: PromValue, drop?: string): Attributes {
  const out: Attributes = {};
  for (const [k, val] of Object.entries(v.labels)) {
    if (k !== drop && val !== undefined) out[k] = val;
  }
  return out;
}

function translate(m: PromMetric, startTime: HrTime, endTime: HrTime): MetricData[] {
  const descriptor = { name: m.name, description: m.help, unit: '', valueType: ValueType.DOUBLE };
  const values = m.values as PromValue[];
  const points = (): DataPoint<number>[] =>
    values.map((v) => ({ startTime, endTime, attributes: labelsOf(v), value: v.value }));
  switch (String(m.type)) {
    case 'counter':
      return [
        {
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.SUM,
          isMonotonic: true,
          dataPoints: points(),
        },
      ];
    case 'gauge':
      return [
        {
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.GAUGE,
          dataPoints: points(),
        },
      ];
    case 'histogram':
      return [
        {
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.HISTOGRAM,
          dataPoints: histogramPoints(m.name, values, startTime, endTime),
        },
      ];
    default:
      // No summaries are registered; anything else is left out rather than misread.
      return [];
  }
}

/**
 * prom-client gives a histogram as cumulative `_bucket` counts by `le`, plus `_sum` and
 * `_count`, per label set; OTLP wants per-bucket counts over the finite boundaries.
 */
function histogramPoints(
  name: string,
  values: PromValue[],
  startTime: HrTime,
  endTime: HrTime,
): DataPoint<Histogram>[] {
  const series = new Map<
    string,
    { attributes: Attributes; le: [number, number][]; sum: number; count: number }
  >();
  for (const v of values) {
    const attributes = labelsOf(v, 'le');
    const key = JSON.stringify(attributes);
    let s = series.get(key);
    if (!s) {
      s = { attributes, le: [], sum: 0, count: 0 };
      series.set(key, s);
    }
    if (v.metricName === `${name}_bucket`) {
      const le = Number(v.labels.le);
      if (Number.isFinite(le)) s.le.push([le, v.value]);
    } else if (v.metricName === `${name}_sum`) s.sum = v.value;
    else if (v.metricName === `${name}_count`) s.count = v.value;
  }
  return [...series.values()].map((s) => {
    s.le.sort((a, b) => a[0] - b[0]);
    const counts: number[] = [];
    let below = 0;
    for (const [, cumulative] of s.le) {
      counts.push(cumulative - below);
      below = cumulative;
    }
    counts.push(s.count - below);
    return {
      startTime,
      endTime,
      attributes: s.attributes,
      value: {
        buckets: { boundaries: s.le.map(([le]) => le), counts },
        sum: s.sum,
        count: s.count,
      },
    };
  });
}
