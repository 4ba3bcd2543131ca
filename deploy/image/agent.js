/* global TextEncoder */
/**
 * The agent the worker image runs (see the Dockerfile at the repository root): it joins the
 * room, greets the first participant over data, and ends its job when that participant leaves.
 * Replace it with your own agent file; `agent start agent.js` runs it as the worker and in every
 * job process.
 */
import { RoomEvent } from '@livekit/rtc-node';
import { WorkerOptions } from 'agentstate';

const encoder = new TextEncoder();

export default new WorkerOptions({
  entrypointFnc: async (ctx) => {
    await ctx.connect();
    const user = await ctx.waitForParticipant(undefined, { timeout: 60_000 });
    ctx.room.on(RoomEvent.ParticipantDisconnected, (p) => {
      if (p.identity === user.identity) ctx.shutdown(`${user.identity} left`);
    });
    await ctx.room.localParticipant.publishData(encoder.encode(`hello, ${user.identity}`), {
      reliable: true,
      topic: 'greeting',
      destination_identities: [user.identity],
    });
  },
});
