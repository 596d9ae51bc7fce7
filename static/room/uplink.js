// Automatic audio-only when our uplink cannot carry video, and back when it can.
//
// Video that cannot get through for LOW_MS only delays and drowns our audio: the browser's
// own estimate of what it may send (candidate-pair availableOutgoingBitrate) under LOW_BPS
// while the camera gets less than MIN_VIDEO_KBPS, or under STARVED_FPS frames a second, or
// the browser says bandwidth holds it back; or that estimate under FLOOR_BPS whatever the
// camera does; or what we send queueing up — round trips over QUEUED_RTT_MS while over
// LOST_UP_PCT of our packets are lost (random loss alone never does both; an uplink that
// video overfills does: at 64 kbit/s the browser kept sending 50–100 kbit/s of video and
// its estimate stayed at 84 kbit/s while the round trip grew to 1.2 s). (The estimate alone
// is not enough either: towards the relay, an aiortc peer whose REMB is conservative, it
// sits under 100 kbit/s while 14 frames a second get through.)
// Then we stop sending video (the sender's encoding goes inactive — no renegotiation), keep
// the microphone at a lower bitrate, and tell the member and the room. After a hold we try
// video again, at the start cap; if the estimate does not hold up within PROBE_MS, audio
// only again, and the next try waits twice as long (up to HOLD_MAX_MS).
//
// The camera starts at VIDEO_START_BITRATE, not the maximum: the browser's first estimate
// is a guess (300 kbit/s), and at 64 kbit/s up a camera at 250 kbit/s overfilled the uplink
// for the seconds the guard needs to tell, drowning the member's audio (2–6 % concealed).
// Once the estimate has had WARMUP_MS to learn the link, the cap doubles each second while
// the estimate leaves room for it and some audio (AUDIO_ROOM_BPS) and nothing queues, up to
// VIDEO_MAX_BITRATE; as soon as the uplink looks overfilled it drops back to the start cap.
// (The browser never sends more than its estimate anyway: through the relay, whose REMB is
// conservative, the estimate often stays near 100–150 kbit/s on a clean link, and a cap held
// under it would only cost picture quality.)

import { VIDEO_MAX_BITRATE, VIDEO_START_BITRATE } from "./peers.js";

export const LOW_BPS = 110_000;
export const FLOOR_BPS = 50_000;
const STARVED_FPS = 5;
const MIN_VIDEO_KBPS = 60;
const QUEUED_RTT_MS = 800;
const LOST_UP_PCT = 10;
const LOW_MS = 2000;
const WARMUP_MS = 3000;
const AUDIO_ROOM_BPS = 32_000;
const RAISE_EVERY_MS = 1000;
const HOLD_MS = 20_000;
const HOLD_MAX_MS = 160_000;
const PROBE_MS = 10_000;
const PROBE_JUDGED_MS = 6000;   // the statistics' window (5 s) then covers the probe only

export class UplinkGuard {
  constructor(room) {
    this.room = room;
    this.state = "video";      // "video" | "audio_only" | "probing"
    this.since = performance.now();
    this.lowSince = null;
    this.hold = HOLD_MS;
    this.started = null;
    this.videoCap = VIDEO_START_BITRATE;
    this.raisedAt = 0;
  }

  // One sample: the windows of the links that carry our video.
  observe(windows) {
    const now = performance.now();
    if (!this.room.sendsVideo()) { this.lowSince = null; if (this.state !== "audio_only") return; }
    const estimates = windows.map((w) => w.outgoing).filter((x) => x);
    const estimate = estimates.length ? Math.min(...estimates) : null;
    const starved = estimate != null && estimate < LOW_BPS && windows.some((w) => w.seconds >= 3
      && (w.fpsOut < STARVED_FPS || w.videoKbpsOut < MIN_VIDEO_KBPS || w.limitation === "bandwidth"));
    const queued = windows.some((w) => w.rtt != null && w.rtt > QUEUED_RTT_MS && w.upLossPct > LOST_UP_PCT);
    const low = (estimate != null && estimate < FLOOR_BPS) || starved || queued;
    if (this.state === "video") {
      if (this.started == null && windows.some((w) => w.rtt != null)) this.started = now;   // links up
      if (low && this.started != null) this.cap(VIDEO_START_BITRATE, now);
      else this.raise(windows, estimate, now);
      if (!low || this.started == null || now - this.started < WARMUP_MS) { this.lowSince = null; return; }
      if (this.lowSince == null) this.lowSince = now;
      if (now - this.lowSince >= LOW_MS) this.to("audio_only", now);
    } else if (this.state === "audio_only") {
      if (now - this.since >= this.hold) this.to("probing", now);
    } else if (this.state === "probing") {
      if (low && now - this.since >= PROBE_JUDGED_MS) {
        this.hold = Math.min(this.hold * 2, HOLD_MAX_MS);
        this.to("audio_only", now);
      } else if (now - this.since >= PROBE_MS) {
        this.hold = HOLD_MS;
        this.to("video", now, { told: true });
      }
    }
  }

  // Double the camera's cap while the estimate has room for it and the audio, and no round
  // trip shows a queue (a link that carries it); never during the warm-up.
  raise(windows, estimate, now) {
    if (this.videoCap >= VIDEO_MAX_BITRATE || this.started == null || now - this.started < WARMUP_MS) return;
    if (now - this.raisedAt < RAISE_EVERY_MS || estimate == null || estimate < this.videoCap + AUDIO_ROOM_BPS) return;
    if (windows.some((w) => w.rtt != null && w.rtt > QUEUED_RTT_MS)) return;
    this.cap(Math.min(VIDEO_MAX_BITRATE, this.videoCap * 2), now);
  }

  cap(bps, now) {
    this.raisedAt = now;
    if (bps === this.videoCap) return;
    this.videoCap = bps;
    this.room.setUplinkVideoCap(bps);
  }

  to(state, now, { told = false } = {}) {
    const before = this.state;
    this.state = state;
    this.since = now;
    this.lowSince = null;
    if (state === "audio_only") {
      this.room.setUplinkVideo(false);
      if (before === "video") this.room.view.toast("Mạng của bạn yếu: đã tạm tắt hình để giữ tiếng. Hình sẽ tự bật lại khi mạng khá hơn.");
    } else if (state === "probing") {
      this.cap(VIDEO_START_BITRATE, now);
      this.room.setUplinkVideo(true);
    } else if (told) {
      this.room.view.toast("Mạng đã khá hơn: đã bật lại hình của bạn.");
    }
  }

  get audioOnly() { return this.state === "audio_only"; }
}
