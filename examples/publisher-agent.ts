/**
 * One agent per publishing participant (`WorkerType.PUBLISHER`): each job is about
 * `ctx.publisher`, subscribes to that participant's tracks only, and ends when they leave.
 *
 *   agent dev examples/publisher-agent.ts
 */
import { RoomEvent, TrackKind, type RemoteTrack } from '@livekit/rtc-node';
import { cli, WorkerOptions, WorkerType, type JobContext } from 'agentstate';

const opts = new WorkerOptions({
  workerType: WorkerType.PUBLISHER,
  requestFnc: (req) =>
    req.accept({
      name: `Listener for ${req.publisher?.identity ?? 'someone'}`,
      attributes: { listensTo: req.publisher?.identity ?? '' },
    }),
  entrypointFnc: async (ctx: JobContext) => {
    const publisher = ctx.job.participant?.identity;
    if (!publisher) return; // not a PUBLISHER job: nothing to do (ends as a success)

    ctx.room.on(RoomEvent.TrackSubscribed, (track: RemoteTrack, _pub, participant) => {
      if (participant.identity !== publisher) return;
      const kind = track.kind === TrackKind.KIND_AUDIO ? 'audio' : 'video';
      console.log(`listening to ${publisher}'s ${kind} track in ${ctx.roomName}`);
    });
    // Only this publisher's tracks matter to this job.
    await ctx.connect({ autoSubscribe: false });
    const participant = await ctx.waitForParticipant(publisher, { timeout: 30_000 });
    for (const pub of participant.trackPublications.values()) pub.setSubscribed(true);
    ctx.room.on(RoomEvent.TrackPublished, (pub, p) => {
      if (p.identity === publisher) pub.setSubscribed(true);
    });
    // The job ends by itself when the publisher leaves (PUBLISHER jobs follow their publisher).
  },
});

export default opts;
cli.runApp(opts);
