/**
 * Reads the Kubernetes manifests in deploy/kubernetes/ with the `yaml` package, for tests that
 * check them against the code. Only the fields those tests read are typed.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse } from 'yaml';

export const MANIFEST_DIR = join(
  resolve(dirname(fileURLToPath(import.meta.url)), '../..'),
  'deploy/kubernetes',
);

export interface HttpProbe {
  httpGet: { path: string; port: string | number };
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: HttpProbe;
  readinessProbe?: HttpProbe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { readOnlyRootFilesystem?: boolean };
  volumeMounts?: { name: string; mountPath: string }[];
}

export interface Deployment {
  kind: 'Deployment';
  metadata: { name: string };
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        terminationGracePeriodSeconds?: number;
        securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
        containers: Container[];
        volumes?: { name: string; emptyDir?: Record<string, unknown> }[];
      };
    };
  };
}

export interface HorizontalPodAutoscaler {
  apiVersion: string;
  kind: 'HorizontalPodAutoscaler';
  spec: {
    scaleTargetRef: { apiVersion: string; kind: string; name: string };
    minReplicas?: number;
    maxReplicas: number;
    metrics: {
      type: string;
      pods?: { metric: { name: string }; target: { type: string; averageValue?: string } };
    }[];
  };
}

/** Every document of one manifest file (a file may hold several, separated by `---`). */
export function manifestDocuments(file: string): Record<string, unknown>[] {
  const text = readFileSync(join(MANIFEST_DIR, file), 'utf8');
  return parseAllDocuments(text).map((doc) => {
    if (doc.errors.length > 0) {
      throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    }
    return doc.toJS() as Record<string, unknown>;
  });
}

/** The one document of `kind` in `file`; throws if there is not exactly one. */
export function manifest<T>(file: string, kind: string): T {
  const docs = manifestDocuments(file).filter((d) => d.kind === kind);
  if (docs.length !== 1) throw new Error(`${file}: expected one ${kind}, found ${docs.length}`);
  return docs[0] as T;
}

/** Parses a YAML string embedded in a manifest (e.g. a ConfigMap's config file). */
export function parseEmbedded<T>(text: string): T {
  return parse(text) as T;
}

/** The value of `--flag VALUE` or `--flag=VALUE` in `args`, or undefined. */
export function flagValue(args: readonly string[], flag: string): string | undefined {
  for (const [i, arg] of args.entries()) {
    if (arg === flag) return args[i + 1];
    if (arg.startsWith(`${flag}=`)) return arg.slice(flag.length + 1);
  }
  return undefined;
}

/** A Kubernetes memory quantity (`512Mi`, `1Gi`, `1G`, bytes) in MiB. */
export function mebibytes(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
  if (!m) throw new Error(`not a memory quantity: ${quantity}`);
  const factor: Record<string, number> = {
    '': 1,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return (Number(m[1]) * factor[m[2] ?? '']!) / 1024 ** 2;
}
