/**
 * `npm run demo`: the whole loop on one machine, visible in one terminal.
 *
 * 1. Uses the LiveKit server at LIVEKIT_URL, or (unset) builds/starts a local livekit-server.
 * 2. Runs the echo agent under `agent dev`, its logs streamed here.
 * 3. A scripted participant joins a room, the agent is dispatched, greets, echoes three
 *    messages; the participant leaves and the job ends with its status.
 * 4. The worker is drained with SIGINT and everything is stopped.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ParticipantKind, RoomEvent } from '@livekit/rtc-node';
import { startLiveKitServer, type LiveKitServer } from '../test/support/livekit-server.ts';
import { joinRoom, waitForParticipant, withDeadline } from '../test/support/participants.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = (msg: string) => console.log(`\x1b[35m[demo]\x1b[0m ${msg}`);

async function ensureServer(): Promise<{
  url: string;
  apiKey: string;
  apiSecret: string;
  stop(): Promise<void>;
}> {
  if (process.env.LIVEKIT_URL) {
    say(`using the LiveKit server at ${process.env.LIVEKIT_URL}`);
    return {
      url: process.env.LIVEKIT_URL,
      apiKey: process.env.LIVEKIT_API_KEY ?? '',
      apiSecret: process.env.LIVEKIT_API_SECRET ?? '',
      stop: async () => undefined,
    };
  }
  say('LIVEKIT_URL is not set: starting a local livekit-server (built with Go on first run)');
  const bin = await new Promise<string>((resolve, reject) => {
    const p = spawn('bash', [`${root}/scripts/livekit-server.sh`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.once('exit', (code) =>
      code === 0
        ? resolve(out.trim().split('\n').at(-1)!)
        : reject(new Error(`livekit-server.sh failed (${code})`)),
    );
  });
  process.env.LIVEKIT_SERVER_BIN = bin;
  const server: LiveKitServer = await startLiveKitServer({ name: 'demo', targetLoad: 2 });
  say(`livekit-server is up at ${server.url} (log: ${server.logFile})`);
  return server;
}

async function main(): Promise<void> {
  const server = await ensureServer();
  const agent = spawn(
    process.execPath,
    [
      `${root}/bin/agent.js`,
      'dev',
      `${root}/examples/echo-agent.ts`,
      '--load-threshold',
      'Infinity',
    ],
    {
      env: {
        ...process.env,
        LIVEKIT_URL: server.url,
        LIVEKIT_API_KEY: server.apiKey,
        LIVEKIT_API_SECRET: server.apiSecret,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let agentOut = '';
  const seen = (text: string) => agentOut.includes(text);
  agent.stdout.on('data', (d: Buffer) => {
    process.stdout.write(d);
    agentOut += d.toString();
  });
  const until = async (what: string, probe: () => boolean, ms = 30_000) => {
    const deadline = Date.now() + ms;
    while (!probe()) {
      if (agent.exitCode !== null) throw new Error(`the agent exited before ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stopAll = async () => {
    if (agent.exitCode === null) {
      agent.kill('SIGINT');
      await Promise.race([
        new Promise((r) => agent.once('exit', r)),
        new Promise((r) => setTimeout(r, 15_000)),
      ]);
      if (agent.exitCode === null) agent.kill('SIGKILL');
    }
    await server.stop();
  };

  try {
    await until('the worker to register', () => seen('registered with the server'));
    say('the worker is registered; a participant joins room "demo-room"');
    const user = await joinRoom(server, { room: 'demo-room', identity: 'demo-user' });
    const received: string[] = [];
    user.room.on(RoomEvent.DataReceived, (payload, from) => {
      const text = new TextDecoder().decode(payload);
      received.push(text);
      say(`participant received from ${from?.identity ?? 'server'}: "${text}"`);
    });
    const bot = await waitForParticipant(user.room, {
      kind: ParticipantKind.AGENT,
      timeoutMs: 20_000,
    });
    say(`the agent joined as ${bot.identity} (name "${bot.name}")`);
    await withDeadline(
      (async () => {
        while (!received.some((t) => t.startsWith('hello')))
          await new Promise((r) => setTimeout(r, 50));
      })(),
      10_000,
      'the greeting',
    );
    for (const word of ['one', 'two', 'three']) {
      say(`participant sends "${word}"`);
      await user.room.localParticipant!.publishData(new TextEncoder().encode(word), {
        reliable: true,
      });
      await withDeadline(
        (async () => {
          while (!received.includes(`echo: ${word}`)) await new Promise((r) => setTimeout(r, 50));
        })(),
        10_000,
        `the echo of ${word}`,
      );
    }
    say('participant leaves the room');
    await user.leave();
    await until('the job to end', () => seen('job ended'));
    say('the job ended (see its status above); draining the worker with SIGINT');
    await stopAll();
    say('done: a job came, ran and ended. Next: edit examples/echo-agent.ts and run it yourself.');
  } catch (err) {
    await stopAll();
    throw err;
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(
      `\x1b[31m[demo] failed:\x1b[0m ${err instanceof Error ? err.message : String(err)}`,
    );
    process.exit(1);
  },
);
