"""The bench agent on livekit-agents (Python), in its documented style: an AgentServer with one
rtc_session, run as `python -m livekit.agents start bench/agents/livekit_agents_py.py`.

Joins the room, publishes one data message (with the time its entrypoint was called), and ends
its job when the participant it served leaves.

BENCH_LOAD_POLICY=seed gives it the seed's example load, `min(len(active_jobs) / 10, 1)` (with
BENCH_LOAD_THRESHOLD=0.9: at most 9 concurrent jobs), instead of the default CPU load.
"""

import json
import os
import sys
import time

from livekit import rtc
from livekit.agents import AgentServer, JobContext, JobRequest



def seed_load(server: AgentServer) -> float:
    return min(len(server.active_jobs) / 10, 1)


server = AgentServer(
    load_fnc=seed_load if os.environ.get("BENCH_LOAD_POLICY") == "seed" else None,
    num_idle_processes=int(os.environ.get("BENCH_IDLE", "4")),
    load_threshold=float(os.environ.get("BENCH_LOAD_THRESHOLD", "1")),
    port=int(os.environ.get("BENCH_HTTP_PORT", "8081")),
)

# Bench-only: one stdout line per JobAssignment, as the worker starts handling it.
_handle_assignment = AgentServer._handle_assignment


def _instrumented(self, assignment):  # type: ignore[no-untyped-def]
    t = time.time() * 1000
    sys.stdout.write(json.dumps({"bench": "assignment", "jobId": assignment.job.id, "t": t}) + "\n")
    sys.stdout.flush()
    return _handle_assignment(self, assignment)


AgentServer._handle_assignment = _instrumented  # type: ignore[method-assign]


async def on_request(req: JobRequest) -> None:
    await req.accept(name="bench", identity=f"agent-{req.id}")


@server.rtc_session(agent_name=os.environ.get("BENCH_AGENT_NAME", "bench-py"), on_request=on_request)
async def entrypoint(ctx: JobContext) -> None:
    entry_at = time.time() * 1000
    await ctx.connect()
    connected_at = time.time() * 1000
    user = await ctx.wait_for_participant()
    user_at = time.time() * 1000

    def on_disconnected(p: rtc.RemoteParticipant) -> None:
        if p.identity == user.identity:
            ctx.shutdown(f"{user.identity} left")

    ctx.room.on("participant_disconnected", on_disconnected)
    payload = {
        "framework": "livekit-agents",
        "jobId": ctx.job.id,
        "entryAt": entry_at,
        "connectedAt": connected_at,
        "userAt": user_at,
        "pid": os.getpid(),
    }
    await ctx.room.local_participant.publish_data(
        json.dumps(payload), reliable=True, topic="bench", destination_identities=[user.identity]
    )
    # Bench-only: the publish call resolved (as bench/agents/instrument.ts stampPublished).
    stamps = os.environ.get("BENCH_STAMPS")
    if stamps:
        with open(stamps, "a") as f:
            f.write(json.dumps({"jobId": ctx.job.id, "publishedAt": time.time() * 1000}) + "\n")
