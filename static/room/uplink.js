// Automatic audio-only when our uplink cannot carry video, and back when it can.
//
// Video that cannot get through for LOW_MS — the camera held back to a trickle (under
// STARVED_FPS frames a second sent) while the browser's own estimate of what it may send
// (candidate-pair availableOutgoingBitrate) is under LOW_BPS or it says bandwidth limits it,
// or that estimate under FLOOR_BPS whatever the camera does — only delays and drowns our
// audio. (The estimate alone is not enough: towards the relay, an aiortc peer whose REMB
// is conservative, it can sit under 100 kbit/s while 14 frames a second get through.) We stop sending
// video (the sender's encoding goes inactive — no renegotiation), keep the microphone at a
// lower bitrate, and tell the member and the room. After a hold we try video again; if the
// estimate does not hold up within PROBE_MS, audio only again, and the next try waits twice
// as long (up to HOLD_MAX_MS).

export const LOW_BPS = 110_000;
export const FLOOR_BPS = 50_000;
const STARVED_FPS = 5;
const LOW_MS = 4000;
const WARMUP_MS = 6000;
const HOLD_MS = 20_000;
const HOLD_MAX_MS = 160_000;
const PROBE_MS = 8000;

export class UplinkGuard {
  constructor(room) {
    this.room = room;
    this.state = "video";      // "video" | "audio_only" | "probing"
    this.since = performance.now();
    this.lowSince = null;
    this.hold = HOLD_MS;
    this.started = null;
  }

  // One sample: the windows of the links that carry our video.
  observe(windows) {
    const now = performance.now();
    if (!this.room.sendsVideo()) { this.lowSince = null; if (this.state !== "audio_only") return; }
    const estimates = windows.map((w) => w.outgoing).filter((x) => x);
    const estimate = estimates.length ? Math.min(...estimates) : null;
    const starved = windows.some((w) => w.seconds >= 3 && w.fpsOut < STARVED_FPS
                                        && (w.limitation === "bandwidth" || (estimate != null && estimate < LOW_BPS)));
    const low = (estimate != null && estimate < FLOOR_BPS) || starved;
    if (this.state === "video") {
      if (this.started == null) this.started = estimate != null ? now : null;   // links up
      if (!low || this.started == null || now - this.started < WARMUP_MS) { this.lowSince = null; return; }
      if (this.lowSince == null) this.lowSince = now;
      if (now - this.lowSince >= LOW_MS) this.to("audio_only", now);
    } else if (this.state === "audio_only") {
      if (now - this.since >= this.hold) this.to("probing", now);
    } else if (this.state === "probing") {
      if (low && now - this.since >= 3000) {
        this.hold = Math.min(this.hold * 2, HOLD_MAX_MS);
        this.to("audio_only", now);
      } else if (now - this.since >= PROBE_MS) {
        this.hold = HOLD_MS;
        this.to("video", now, { told: true });
      }
    }
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
      this.room.setUplinkVideo(true);
    } else if (told) {
      this.room.view.toast("Mạng đã khá hơn: đã bật lại hình của bạn.");
    }
  }

  get audioOnly() { return this.state === "audio_only"; }
}
