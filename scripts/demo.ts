/**
 * `npm run demo`: the whole loop on one machine, visible in one terminal, up until Ctrl+C.
 *
 * 1. Uses the LiveKit server at LIVEKIT_URL, or (unset) builds/starts a local livekit-server.
 * 2. Runs the echo agent under the built `agent dev` (plain node, the package's bin), its logs
 *    streamed here, and points at its live inspector.
 * 3. A scripted participant joins a room, the agent is dispatched and greets; the participant
 *    then says something every few seconds and the agent echoes it.
 * 4. Ctrl+C: the participant leaves, the job ends with its status, the worker drains, and the
 *    server stops. `npm run demo -- --once` does one short job (three messages) and exits.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ParticipantKind, RoomEvent } from '@livekit/rtc-node';
import { startLiveKitServer, type LiveKitServer } from '../test/support/livekit-server.ts';
import { joinRoom, waitForParticipant, withDeadline } from '../test/support/participants.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const once = process.argv.includes('--once');
const TALK_EVERY_MS = 4000;
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
  const { NODE_ENV: _ours, ...agentEnv } = process.env;
  const agent = spawn(
    process.execPath,
    [
      // The built package's bin on plain node (`npm run demo` builds first), as users run it.
      `${root}/bin/agent.js`,
      'dev',
      `${root}/examples/echo-agent.ts`,
      '--load-threshold',
      'Infinity',
    ],
    {
      env: {
        // NODE_ENV=production only quiets this script's own participant; the agent gets the
        // user's environment, as it would without the demo.
        ...agentEnv,
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
    const echo = async (word: string) => {
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
    };
    if (once) {
      for (const word of ['one', 'two', 'three']) await echo(word);
    } else {
      const url = /inspector: (http:\/\/\S+)/.exec(agentOut)?.[1];
      say(`open the inspector: ${url ?? '(see the agent output above)'}`);
      say(
        `the participant talks every ${TALK_EVERY_MS / 1000} s; Ctrl+C ends the job and the demo`,
      );
      const interrupted = new Promise<void>((resolve) => {
        // The agent is in our process group and drains on the same Ctrl+C; stopAll waits for it.
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      let n = 0;
      let stop = false;
      void interrupted.then(() => (stop = true));
      while (!stop) {
        n += 1;
        await echo(`message ${n}`);
        await Promise.race([interrupted, new Promise((r) => setTimeout(r, TALK_EVERY_MS))]);
      }
      say('Ctrl+C: ending the job');
    }
    say('participant leaves the room');
    await user.leave();
    await until('the job to end', () => seen('job ended'));
    say('the job ended (see its status above); draining the worker');
    await stopAll();
    say('done: a job came, ran and ended. Next: write your own agent (see README, "Quick start").');
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
