/**
 * A multi-node LiveKit deployment for one test file: a `redis-server` and N `livekit-server`
 * nodes sharing it (each with its own ports and node id), all on loopback.
 *
 *   const cluster = await startLiveKitCluster({ name: 'multi-node' });
 *   const [a, b] = cluster.nodes;   // each a LiveKitServer: url, httpUrl, nodeId, stop(), kill()
 *   afterAll(() => cluster.stop());
 *
 * Resolves only when Redis answers, every node answers HTTP and Redis lists every node (so each
 * node can see the others' workers and rooms); if any part fails to start, the
 * parts already started are stopped and the error (naming the part, with its log) is thrown:
 * a test never runs, or skips, on half a cluster.
 */
import {
  startLiveKitServer,
  type LiveKitServer,
  type LiveKitServerOptions,
} from './livekit-server.ts';
import { sleep } from './managed-process.ts';
import { startRedisServer, type RedisServer } from './redis-server.ts';

export interface LiveKitCluster {
  redis: RedisServer;
  nodes: LiveKitServer[];
  /** Stops every node, then Redis. Idempotent; a node already stopped or killed is fine. */
  stop(): Promise<void>;
}

export interface LiveKitClusterOptions extends Omit<LiveKitServerOptions, 'name' | 'redisAddress'> {
  /** Names the log files (`<name>-redis`, `<name>-node1`, …). */
  name: string;
  /** How many livekit-server nodes. Default 2. */
  nodeCount?: number;
}

export async function startLiveKitCluster(options: LiveKitClusterOptions): Promise<LiveKitCluster> {
  const { name, nodeCount = 2, ...nodeOptions } = options;
  const redis = await startRedisServer({ name: `${name}-redis` });
  const nodes: LiveKitServer[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const results = await Promise.allSettled(nodes.map((n) => n.stop()));
      await redis.stop();
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length > 0) {
        throw new AggregateError(
          failed.map((f) => f.reason as unknown),
          `${failed.length} node(s) failed to stop`,
        );
      }
    })();
    return stopping;
  };
  try {
    // One at a time: each node claims its ports before the next one looks for free ones.
    for (let i = 1; i <= nodeCount; i++) {
      nodes.push(
        await startLiveKitServer({
          ...nodeOptions,
          name: `${name}-node${i}`,
          redisAddress: redis.address,
        }),
      );
    }
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  try {
    await waitForNodesInRedis(redis, nodes, options.readyTimeoutMs ?? 10_000);
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return { redis, nodes, stop };
}

export class LiveKitClusterError extends Error {
  override name = 'LiveKitClusterError';
}

/** livekit-server registers each node in the Redis hash `nodes`; wait until all are there. */
async function waitForNodesInRedis(
  redis: RedisServer,
  nodes: LiveKitServer[],
  timeoutMs: number,
): Promise<void> {
  const ids = new Set(nodes.map((n) => n.nodeId));
  if (ids.size !== nodes.length) {
    throw new LiveKitClusterError(`nodes share a node id: ${[...ids].join(', ')}`);
  }
  const deadline = Date.now() + timeoutMs;
  let listed = '';
  while (Date.now() < deadline) {
    listed = await redis.command('HLEN nodes');
    if (listed === `:${nodes.length}`) return;
    await sleep(100);
  }
  throw new LiveKitClusterError(
    `Redis lists ${listed} nodes, not ${nodes.length}, ${timeoutMs} ms after they started; logs: ${nodes.map((n) => n.logFile).join(', ')}`,
  );
}
