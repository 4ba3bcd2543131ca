/**
 * The echo agent: joins the room, greets the first participant, echoes every data message it
 * gets back to its sender, and ends its job when that participant leaves.
 *
 *   agent dev examples/echo-agent.ts          # or: npx tsx examples/echo-agent.ts dev
 */
import { RoomEvent, type RemoteParticipant } from '@livekit/rtc-node';
import { cli, WorkerOptions, type JobContext, type JobProcess } from 'agentstate';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const opts = new WorkerOptions({
  // Runs once per process before it takes a job: load models here.
  prewarmFnc: (proc: JobProcess) => {
    proc.userdata.greeting = `hello from warm process ${proc.pid}`;
  },
  requestFnc: (req) =>
    req.accept({ name: 'Echo', identity: `echo-${req.id}`, attributes: { role: 'echo' } }),
  entrypointFnc: async (ctx: JobContext) => {
    await ctx.connect();
    const user: RemoteParticipant = await ctx.waitForParticipant(undefined, { timeout: 60_000 });
    const local = ctx.room.localParticipant!;

    ctx.room.on(RoomEvent.DataReceived, (payload, from) => {
      if (!from || from.identity !== user.identity) return;
      const text = decoder.decode(payload);
      void local.publishData(encoder.encode(`echo: ${text}`), {
        reliable: true,
        topic: 'echo',
        destination_identities: [from.identity],
      });
    });
    ctx.room.on(RoomEvent.ParticipantDisconnected, (p) => {
      if (p.identity === user.identity) ctx.shutdown(`${user.identity} left`);
    });
    ctx.addShutdownCallback((reason) => {
      console.log(`echo agent done in ${ctx.roomName}: ${reason}`);
    });

    await local.publishData(encoder.encode(String(ctx.proc.userdata.greeting)), {
      reliable: true,
      topic: 'greeting',
      destination_identities: [user.identity],
    });
  },
});

export default opts;
cli.runApp(opts);
