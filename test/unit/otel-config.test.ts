/**
 * What the standard OpenTelemetry environment turns on (src/telemetry/otel-config.ts): nothing
 * without it, traces when an exporter or an OTLP endpoint is named, metrics and logs only when
 * asked for by name, and a clear error naming the variable for what the worker cannot honour.
 */
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/index.ts';
import { otelWanted, traceLogFields } from '../../src/telemetry/otel-config.ts';

describe('the OpenTelemetry configuration', () => {
  it('is off with no OTEL_* variable and no tracerProvider', () => {
    expect(otelWanted({}, false)).toBeUndefined();
    expect(otelWanted({ OTEL_SERVICE_NAME: 'svc' }, false)).toBeUndefined();
    expect(otelWanted({ OTEL_TRACES_EXPORTER: 'none' }, false)).toBeUndefined();
  });

  it('turns traces on for an OTLP endpoint (OTLP is the default exporter) or a named exporter', () => {
    expect(otelWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, false)).toEqual({
      traces: 'otlp',
      metrics: false,
      logs: false,
    });
    expect(
      otelWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c/v1/traces' }, false)?.traces,
    ).toBe('otlp');
    expect(otelWanted({ OTEL_TRACES_EXPORTER: 'console' }, false)?.traces).toBe('console');
    expect(otelWanted({ OTEL_TRACES_EXPORTER: 'Console, OTLP' }, false)?.traces).toBe('otlp');
    // An endpoint with traces turned off by name: metrics or logs only.
    expect(
      otelWanted(
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c',
          OTEL_TRACES_EXPORTER: 'none',
          OTEL_LOGS_EXPORTER: 'otlp',
        },
        false,
      ),
    ).toEqual({ traces: undefined, metrics: false, logs: true });
  });

  it('uses a tracerProvider given as an option, and sends metrics and logs only when named', () => {
    expect(otelWanted({}, true)).toEqual({ traces: 'provider', metrics: false, logs: false });
    expect(
      otelWanted({ OTEL_METRICS_EXPORTER: 'otlp', OTEL_LOGS_EXPORTER: 'otlp' }, false),
    ).toEqual({ traces: undefined, metrics: true, logs: true });
  });

  it('is off with OTEL_SDK_DISABLED=true, whatever else is set', () => {
    expect(
      otelWanted({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }, true),
    ).toBeUndefined();
  });

  it('names the variable it cannot honour', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ OTEL_TRACES_EXPORTER: 'zipkin' }, /OTEL_TRACES_EXPORTER.*zipkin/],
      [{ OTEL_METRICS_EXPORTER: 'prometheus' }, /OTEL_METRICS_EXPORTER.*prometheus/],
      [{ OTEL_LOGS_EXPORTER: 'console' }, /OTEL_LOGS_EXPORTER.*console/],
      [
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
        /OTEL_EXPORTER_OTLP_PROTOCOL.*grpc.*http\/protobuf/,
      ],
      [
        { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' },
        /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL/,
      ],
    ];
    for (const [env, message] of cases) {
      expect(() => otelWanted(env, false)).toThrow(InvalidOptionError);
      expect(() => otelWanted(env, false)).toThrow(message);
    }
  });

  it('reads the trace and span id of a traceparent for log records', () => {
    expect(
      traceLogFields({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }),
    ).toEqual({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' });
    expect(traceLogFields(undefined)).toEqual({});
    expect(traceLogFields({ traceparent: 'garbage' })).toEqual({});
  });
});
