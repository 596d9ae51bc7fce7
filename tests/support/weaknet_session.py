"""Two Chromium members in a meeting room, one of them behind the lab's weak link
(tests/support/netlab.py), and what each of them experiences — shared by
``tests/browser/test_weaknet.py`` (asserts) and ``bench/weaknet.py`` (measures).

The *speaker* (the secretary, ``sec_a``) sits on a clean leg: Chromium in this namespace,
on loopback. The *away member* (``away_a``) runs Chromium inside the lab's namespace and
reaches the server (and, in the mesh, the speaker) over the impaired veth pair. Both use
Chromium's fake camera and microphone. One run:

1. the away member logs in (``/login?next=<room>``, submitted once the login page is idle,
   as after typing): ``join_s`` = submit → room page ready;
2. both click "Vào phòng với camera": ``media_s`` = the away member's click → audio flowing
   both ways;
3. a steady stretch: concealed audio each way (``concealed_in`` = what the away member hears,
   ``concealed_out`` = how the speaker hears the away member), the speaker's video frames
   the away member decodes per second, freezes;
4. a cut (nothing gets through either way): ``reconnect_shown_s`` = cut → the away page says
   "Đang kết nối lại…"; after it, ``cut_recover_s`` = end of the cut → audio flowing both
   ways again; ``same_participant`` = the away member is back as the same participant, on
   one roster line.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from app.config import Settings
from app.factory import create_app
from app.server import server_config
from meetings.foundation.actors import Actor
from meetings.foundation.base import utcnow
from meetings.organisation.organisations import Organisation
from meetings.planning import meetings as mt
from meetings.planning.meetings import MeetingKind, MeetingStatus, PilotApproval
from tests.support.databases import SqliteTemplate
from tests.support.netlab import Condition, NetLab
from tests.support.world import PASSWORD, build_world

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-quic", "--no-first-run", "--disable-default-apps",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
]

#: What a page receives and shows, summed over its peer connections (two members: all the
#: inbound media is the other member's).
PAGE_STATS = """async () => {
  const room = window.chiboRoom;
  const out = { audioPackets: 0, audioBySsrc: {}, concealed: 0, samples: 0, frames: 0, freezes: 0, videoPackets: 0,
                conn: (document.querySelector("#conn") || {}).dataset?.state, me: room && room.me,
                uplink: room && room.uplink && room.uplink.state, videoCap: room && room.uplink && room.uplink.videoCap, links: room ? [...room.links.keys()] : [],
                warmed: !!(room && room.links.get("relay") && room.links.get("relay").adopted),
                quality: room && room.indicators && room.indicators.quality,
                // What the page sends, over the last 5 s: the browser's estimate, the video's rate.
                sent: room && room.indicators ? [...room.indicators.windows.values()].map((w) => w && {
                  estimateKbps: w.outgoing && Math.round(w.outgoing / 1000), videoKbps: Math.round(w.videoKbpsOut) }) : [] };
  if (!room) return out;
  for (const link of room.links.values()) {
    const report = await link.pc.getStats();
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      if (s.kind === "audio") {
        const codec = s.codecId && report.get(s.codecId);
        if (codec) out.audioCodec = codec.mimeType;
        out.audioPackets += s.packetsReceived || 0;
        out.audioBySsrc[s.ssrc] = (out.audioBySsrc[s.ssrc] || 0) + (s.packetsReceived || 0);
        out.concealed += s.concealedSamples || 0;
        out.samples += s.totalSamplesReceived || 0;
      } else {
        out.frames += s.framesDecoded || 0;
        out.freezes += s.freezeCount || 0;
        out.videoPackets += s.packetsReceived || 0;
      }
    });
  }
  return out;
}"""

#: The app of the latest run (for a look inside the relay when investigating).
LAST_APP: Any = None

ROSTER_LINES = """(id) => document.querySelectorAll(`#people-list .person[data-id="${id}"]`).length"""


@dataclass
class RunResult:
    mode: str
    condition: str
    join_s: float | None = None
    media_s: float | None = None
    concealed_in_pct: float | None = None
    concealed_out_pct: float | None = None
    video_fps_in: float | None = None
    freezes: int | None = None
    reconnect_shown_s: float | None = None
    cut_recover_s: float | None = None
    same_participant: bool | None = None
    audio_only: bool | None = None
    #: Seconds the away member's received video stood still (no frame decoded) in the steady stretch.
    video_stalled_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        def fmt(v: Any) -> str:
            if v is None:
                return "-"
            if isinstance(v, bool):
                return "yes" if v else "no"
            if isinstance(v, float):
                return f"{v:.2f}"
            return str(v)

        fields = ("mode", "condition", "join_s", "media_s", "concealed_in_pct", "concealed_out_pct", "video_fps_in",
                  "freezes", "reconnect_shown_s", "cut_recover_s", "same_participant", "audio_only")
        return " ".join(f"{name}={fmt(getattr(self, name))}" for name in fields)


def open_meeting(database: Any) -> int:
    """The world of the tests, with cell A approved for the pilot and its meeting open now."""
    with database.session() as s:
        w = build_world(s)
        actor = Actor.system("weaknet")
        s.add(PilotApproval(cell_id=w.id("A"), decision_number="15-QĐ/ĐU", decided_on=dt.date(2026, 1, 5),
                            approving_org_id=w.id("X"), approving_body="Đảng ủy xã Xuân Hòa",
                            valid_from=dt.date(2026, 1, 5)))
        now = utcnow()
        meeting = mt.create_meeting(s, actor, s.get(Organisation, w.id("A")), kind=MeetingKind.REGULAR,
                                    starts_at=now, remote_open=True)
        mt.change_status(s, actor, meeting, MeetingStatus.OPEN, now=now)
        return int(meeting.id)


@contextlib.asynccontextmanager
async def room_server(lab: NetLab, workdir: Path, *, relay: bool, port: int,
                      turn: Any = None) -> AsyncIterator[tuple[int, Callable[[str], str]]]:
    """The app on 0.0.0.0:``port`` (reachable on loopback and from the lab's namespace);
    yields (meeting id, base URL for a host)."""
    import aioice.ice

    template = SqliteTemplate.create(workdir)
    database = template.fresh(workdir)
    meeting_id = open_meeting(database)
    values: dict[str, Any] = {"DATA_DIR": str(workdir / "var"), "SECRET_KEY": "weaknet-secret-0123456789",
                              "LOG_REQUESTS": False, "LOG_LEVEL": "WARNING", "NOTICE_INTERVAL": 0}
    if relay:
        values["RELAY_VIDEO_SENDERS"] = 0
    if turn is not None:
        values.update({"ICE_SERVERS": [turn.url], "TURN_SECRET": turn.secret, "ICE_TRANSPORT_POLICY": "relay"})
    settings = Settings.from_env({}, **values)
    # The relay's own host candidates: loopback for the speaker, the veth for the away member.
    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1", lab.server_addr]
    app = create_app(settings, database=database)
    global LAST_APP
    LAST_APP = app
    # The production configuration (no permessage-deflate, the request-head deadline).
    server = uvicorn.Server(server_config(app, settings, host="0.0.0.0", port=port, lifespan="on",
                                          timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield meeting_id, lambda host: f"http://{host}:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
        aioice.ice.get_host_addresses = original
        database.dispose()


async def poll(fn: Callable[[], Any], until: Callable[[Any], bool], timeout: float, every: float = 0.1) -> float | None:
    """Seconds until ``until(await fn())`` holds, or None after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if until(await fn()):
            return time.monotonic() - start
        await asyncio.sleep(every)
    return None


async def run_once(lab: NetLab, condition: Condition, *, relay: bool, port: int, workdir: Path,
                   steady: float = 20.0, cut: float = 10.0, turn: Any = None, read: float = 0.0,
                   on_stage: Callable[[str, Any, Any], Any] | None = None) -> RunResult:
    """One run (see the module docstring). ``on_stage(stage, speaker_page, away_page)`` lets a
    test assert at "steady", "cut" and "recovered"."""
    from playwright.async_api import async_playwright

    result = RunResult(mode=("turn+" if turn is not None else "") + ("relay" if relay else "mesh"),
                       condition=condition.name)
    lab.apply(condition)
    async with room_server(lab, workdir, relay=relay, port=port, turn=turn) as (meeting_id, base), \
            async_playwright() as pw:
        near = base("127.0.0.1")
        far = base(lab.server_addr)
        speaker_browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        away_browser = await pw.chromium.launch(
            executable_path=lab.chromium_wrapper(CHROMIUM),
            args=[*CHROMIUM_ARGS, f"--unsafely-treat-insecure-origin-as-secure={far}"])
        try:
            room = f"/meetings/{meeting_id}/room"
            speaker = await (await speaker_browser.new_context(viewport={"width": 390, "height": 800},
                                                               locale="vi-VN")).new_page()
            away = await (await away_browser.new_context(viewport={"width": 390, "height": 800},
                                                         locale="vi-VN")).new_page()
            await login(speaker, near, room, "sec_a")
            await speaker.wait_for_function("() => !!window.chiboRoom", timeout=30000)
            await speaker.click("#join-video")
            # The away member: login → room page, on the weak link. The member takes a few
            # seconds to type; the bench waits until the login page is idle (it prefetches
            # the room's files meanwhile: app/routes/auth.py).
            await away.goto(f"{far}/login?next={room}", timeout=60000, wait_until="networkidle")
            await away.fill("input[name=username]", "away_a")
            await away.fill("input[name=password]", PASSWORD)
            start = time.monotonic()
            await away.click("button[type=submit]")
            await away.wait_for_function("() => !!window.chiboRoom && !!document.querySelector('#join-video')",
                                         timeout=60000)
            result.join_s = time.monotonic() - start

            async def stats(page: Any) -> dict[str, Any]:
                return dict(await page.evaluate(PAGE_STATS))

            if read:  # a member reading the join screen first (--read); media_s still counts from the click
                await away.wait_for_timeout(read * 1000)
            start = time.monotonic()
            await away.click("#join-video")
            flowing = await poll(lambda: asyncio.gather(stats(away), stats(speaker)),
                                 lambda both: both[0]["samples"] > 0 and both[1]["samples"] > 0, timeout=30)
            result.media_s = None if flowing is None else time.monotonic() - start
            if flowing is None:
                result.notes.append("no audio both ways within 30 s")
                return result
            joined = await stats(away)
            me = joined["me"]
            if relay:
                result.notes.append(f"relay link warmed on the join screen: {'yes' if joined['warmed'] else 'no'}")

            # Steady: let the link settle, then measure. Whether (and when, from the click) the
            # away member's camera paused by itself is watched all along: after a pause the
            # guard tries video again, so the state at the end alone may say "probing".
            audio_only_at: float | None = None

            def watch_uplink(page_stats: dict[str, Any]) -> None:
                nonlocal audio_only_at
                if audio_only_at is None and page_stats["uplink"] == "audio_only":
                    audio_only_at = time.monotonic() - start

            settle = time.monotonic()
            while time.monotonic() - settle < 5.0:
                await asyncio.sleep(0.5)
                watch_uplink(await stats(away))
            a0, s0 = await stats(away), await stats(speaker)
            frames, stalled, last = [], 0.0, a0["frames"]
            t0 = time.monotonic()
            while time.monotonic() - t0 < steady:
                await asyncio.sleep(0.5)
                now_stats = await stats(away)
                watch_uplink(now_stats)
                now = now_stats["frames"]
                if now == last:
                    stalled += 0.5
                last = now
                frames.append(now)
            a1, s1 = await stats(away), await stats(speaker)
            seconds = time.monotonic() - t0
            result.concealed_in_pct = pct(a1["concealed"] - a0["concealed"], a1["samples"] - a0["samples"])
            result.concealed_out_pct = pct(s1["concealed"] - s0["concealed"], s1["samples"] - s0["samples"])
            result.video_fps_in = (a1["frames"] - a0["frames"]) / seconds
            result.freezes = a1["freezes"] - a0["freezes"]
            result.video_stalled_s = stalled
            result.audio_only = audio_only_at is not None
            if audio_only_at is not None:
                result.notes.append(f"audio only {audio_only_at:.1f} s after the click")
            result.notes.append(f"codecs in={a1.get('audioCodec')} out={s1.get('audioCodec')}")
            result.notes.append(f"video caps away={a1.get('videoCap')} speaker={s1.get('videoCap')}")
            result.notes.append(f"sent (estimate/video kbit/s) away={a1.get('sent')} speaker={s1.get('sent')}")
            if on_stage is not None:
                await on_stage("steady", speaker, away)

            if cut:
                lab.cut(True)
                started = time.monotonic()
                shown = await poll(lambda: stats(away), lambda s: s["conn"] == "reconnecting", timeout=cut)
                result.reconnect_shown_s = shown
                if on_stage is not None:
                    await on_stage("cut", speaker, away)
                await asyncio.sleep(max(0.0, cut - (time.monotonic() - started)))
                before = await asyncio.gather(stats(away), stats(speaker))
                lab.cut(False)
                back = await poll(lambda: asyncio.gather(stats(away), stats(speaker)),
                                  lambda both: audio_since(before[0], both[0]) > 5 and audio_since(before[1], both[1]) > 5,
                                  timeout=30, every=0.05)
                result.cut_recover_s = back
                if back is not None and not set((await stats(away))["audioBySsrc"]) & set(before[0]["audioBySsrc"]):
                    result.notes.append("the away member's connection was made anew after the cut")
                await poll(lambda: stats(away), lambda s: s["conn"] == "open", timeout=20)
                after = await stats(away)
                await speaker.click("#btn-people")
                lines = await speaker.evaluate(ROSTER_LINES, me)
                result.same_participant = after["me"] == me and lines == 1
                if not result.same_participant:
                    result.notes.append(f"after the cut: me={after['me']} (was {me}), conn={after['conn']}, "
                                        f"roster lines={lines}")
                if on_stage is not None:
                    await on_stage("recovered", speaker, away)
            return result
        finally:
            with contextlib.suppress(Exception):
                await away_browser.close()
            with contextlib.suppress(Exception):
                await speaker_browser.close()


async def login(page: Any, base: str, room: str, username: str) -> None:
    await page.goto(f"{base}/login?next={room}", timeout=60000)
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")


def audio_since(before: dict[str, Any], now: dict[str, Any]) -> int:
    """Audio packets a page received since ``before``, stream by stream: a connection made
    anew (the relay link rebuilt after a cut) starts its counters from zero, which a sum over
    all streams would take for no audio at all until the new stream outgrew the old one."""
    old = before["audioBySsrc"]
    return sum(max(0, count - old.get(ssrc, 0)) for ssrc, count in now["audioBySsrc"].items())


def pct(part: float, whole: float) -> float | None:
    return None if whole <= 0 else 100.0 * part / whole


def median_and_spread(values: list[float | None]) -> str:
    xs = [v for v in values if v is not None]
    if not xs:
        return "-"
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})"
