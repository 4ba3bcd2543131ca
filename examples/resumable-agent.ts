/**
 * An agent that survives its own death: it keeps a short conversation log — the user's data
 * messages and its answers — and checkpoints it after every turn. If its process is killed (OOM,
 * a native crash) or its worker dies, job recovery dispatches the job again, the new job joins
 * with the same identity, and it finds the log in `ctx.recovery.checkpoint`: it tells the user
 * it is back and goes on where it stopped, instead of greeting them as a stranger.
 *
 *   agent dev examples/resumable-agent.ts
 *   kill -9 <the job's pid, from `agent dev`'s log or /worker>   # the agent comes back
 *
 * On one machine the journal is a directory (`stateDir`, `AGENTSTATE_STATE_DIR`); for a fleet,
 * point every worker at the Redis your LiveKit nodes share (`AGENTSTATE_REDIS_URL`).
 */
import { RoomEvent } from '@livekit/rtc-node';
import { cli, WorkerOptions, type JobContext } from 'agentstate';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What is checkpointed: small (the journal takes at most 64 KiB per job), plain JSON. */
interface Conversation {
  turns: { from: 'user' | 'agent'; text: string }[];
}

/** The last turns only: a checkpoint is bounded, and the start of a long call is rarely needed. */
const KEEP_TURNS = 50;

const opts = new WorkerOptions({
  entrypointFnc: async (ctx: JobContext) => {
    await ctx.connect();
    const user = await ctx.waitForParticipant(undefined, { timeout: 60_000 });
    const local = ctx.room.localParticipant!;
    const conversation: Conversation = (ctx.recovery?.checkpoint as Conversation | undefined) ?? {
      turns: [],
    };
    const say = async (text: string) => {
      conversation.turns.push({ from: 'agent', text });
      conversation.turns.splice(0, Math.max(0, conversation.turns.length - KEEP_TURNS));
      ctx.checkpoint(conversation);
      await local.publishData(encoder.encode(text), {
        reliable: true,
        topic: 'chat',
        destination_identities: [user.identity],
      });
    };

    ctx.room.on(RoomEvent.DataReceived, (payload, from) => {
      if (from?.identity !== user.identity) return;
      const text = decoder.decode(payload);
      conversation.turns.push({ from: 'user', text });
      const heard = conversation.turns.filter((t) => t.from === 'user').length;
      void say(`you said "${text}" (message ${heard} of this call)`);
    });
    ctx.room.on(RoomEvent.ParticipantDisconnected, (p) => {
      if (p.identity === user.identity) ctx.shutdown(`${user.identity} left`);
    });

    if (ctx.recovery) {
      const last = conversation.turns.filter((t) => t.from === 'user').at(-1);
      await say(
        `sorry, I was gone for a moment (attempt ${ctx.recovery.attempt}); ` +
          (last ? `you last said "${last.text}"` : 'go on'),
      );
    } else {
      await say('hello! say something');
    }
  },
});

export default opts;
cli.runApp(opts);
