// Automatic audio-only when our uplink cannot carry video, and back when it can.
//
// The microphone stays lean
// (AUDIO_LOW_BITRATE) until the camera's cap has risen above its start: Opus with RED at its
// usual rate is ~85 kbit/s on the wire, more than a 64 kbit/s uplink carries by itself.
//
// Overfilled — audio only within two samples, at any time: the browser's estimate
// (candidate-pair availableOutgoingBitrate) under FLOOR_BPS on a mesh link (Chromium's
// delay-based estimate fell to 47 kbit/s one second into a 64 kbit/s uplink, while round
// trips and losses still looked ordinary), or, on any link, our round trip QUEUE_MS above the
// least it has been while over OVERFILLED_LOSS of our packets were lost (the bottleneck's
// queue and its drops; 5 % random loss never does both). Towards the relay the estimate is
// aiortc's REMB — conservative, and under a loaded machine it fell below 50 kbit/s on a clean
// leg — so there only the queue and drops count. The estimate counts only once it has been
// above LOW_BPS since the camera last started: after audio only it sits at what the audio
// needed and climbs slowly, which says nothing about the link.
//
// Starved — audio only after LOW_MS, past a WARMUP_MS: the estimate under LOW_BPS while the
// camera gets less than MIN_VIDEO_KBPS, or under STARVED_FPS frames a second, or the browser
// says bandwidth holds it back; or round trips over QUEUED_RTT_MS while over LOST_UP_PCT of
// our packets are lost.
//
// Then we stop sending video (the sender's encoding goes inactive — no renegotiation), keep
// the microphone lean, and tell the member (a notice, and "đã tạm tắt hình do mạng yếu" on
// their own tile) and the room. After a hold we try video again at the start cap; a probe
// that overfills the uplink ends after two samples, and the next try waits twice as long (up
// to HOLD_MAX_MS); one that holds PROBE_MS brings the camera back, and the member is told.
//
// The camera starts at VIDEO_START_BITRATE, not the maximum. Once the estimate has had
// WARMUP_MS to learn the link, the cap doubles each second while the estimate leaves room for
// it and some audio (AUDIO_ROOM_BPS) and nothing queues, up to VIDEO_MAX_BITRATE; as soon as
// the uplink looks overfilled it drops back to the start cap. (The browser never sends more
// than its estimate anyway: through the relay, whose REMB is conservative, the estimate often
// stays near 100–150 kbit/s on a clean link, and a cap held under it would only cost picture
// quality.) `trace` keeps the last minute of samples for the bench and for debugging.

import { VIDEO_MAX_BITRATE, VIDEO_START_BITRATE } from "./peers.js";

export const LOW_BPS = 110_000;
export const FLOOR_BPS = 50_000;
const STARVED_FPS = 5;
const MIN_VIDEO_KBPS = 60;
const QUEUED_RTT_MS = 800;
const LOST_UP_PCT = 10;
const LOW_MS = 2000;
const QUEUE_MS = 250;
const OVERFILLED_LOSS = 0.15;
const OVERFILLED_SAMPLES = 2;
// The camera starts START_MS after the links are up unless the estimate is already under
// LOW_BPS (with our audio alone it stayed at its 300 kbit/s guess even at 64 kbit/s up, so
// waiting longer bought nothing); still under it after START_MAX_MS: audio only.
const START_MS = 0;
const START_MAX_MS = 3000;
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
    // "starting" (the camera held until the links are up) is not the initial state: held
    // back, the camera's picture could arrive before the room's "Đã kết nối", and our audio
    // alone never moved the estimate from its guess, so holding it bought nothing measurable.
    this.state = "video";      // "starting" | "video" | "audio_only" | "probing"
    this.since = performance.now();
    this.lowSince = null;
    this.hold = HOLD_MS;
    this.started = null;
    this.videoCap = VIDEO_START_BITRATE;
    this.raisedAt = 0;
    this.baseRtt = null;       // the least round trip seen: the link without our queue
    this.overfilledCount = 0;
    this.estimateHeard = false;
    this.trace = [];           // the last samples, for the bench and for debugging
  }

  // One sample: the windows of the links that carry our video.
  observe(windows) {
    const now = performance.now();
    if (!this.room.sendsVideo()) { this.lowSince = null; if (this.state !== "audio_only") return; }
    const estimates = windows.map((w) => w.outgoing).filter((x) => x);
    const estimate = estimates.length ? Math.min(...estimates) : null;
    // The estimate speaks only once it has been above LOW_BPS since the camera last started:
    // after audio only it sits at what the audio needed (15–35 kbit/s) and takes many seconds
    // to climb again, which says nothing about whether the link now carries video.
    if (estimate != null && estimate >= LOW_BPS) this.estimateHeard = true;
    const heard = this.estimateHeard ? estimate : null;
    const starved = heard != null && heard < LOW_BPS && windows.some((w) => w.seconds >= 3
      && (w.fpsOut < STARVED_FPS || w.videoKbpsOut < MIN_VIDEO_KBPS || w.limitation === "bandwidth"));
    const queued = windows.some((w) => w.rtt != null && w.rtt > QUEUED_RTT_MS && w.upLossPct > LOST_UP_PCT);
    const overfilled = this.overfilled(windows, heard);
    const meshFloor = heard != null && windows.some((w) => !w.relay && w.outgoing != null && w.outgoing < FLOOR_BPS);
    const low = meshFloor || starved || queued || overfilled;
    this.trace.push({ t: Math.round(now), state: this.state, est: estimate && Math.round(estimate / 1000), ovf: this.overfilledCount, base: this.baseRtt && Math.round(this.baseRtt),
                      w: windows.map((w) => [w.rtt && Math.round(w.rtt), w.upRtt && Math.round(w.upRtt), w.upFraction,
                                             Math.round(w.upLossPct), Math.round(w.fpsOut), Math.round(w.videoKbpsOut), w.limitation]) });
    if (this.trace.length > 60) this.trace.shift();
    if (this.started == null && windows.some((w) => w.rtt != null)) this.started = now;   // links up
    if (this.state === "starting") {
      if (this.started == null || now - this.started < START_MS) return;
      if (this.overfilledCount || (estimate != null && estimate < LOW_BPS)) {
        if (now - this.started >= START_MAX_MS) this.to("audio_only", now, { told: true });
        return;
      }
      this.to("video", now);
    } else if (this.state === "video") {
      if (low && this.started != null) this.cap(VIDEO_START_BITRATE, now);
      else this.raise(windows, estimate, now);
      if (this.overfilledCount >= OVERFILLED_SAMPLES) { this.to("audio_only", now); return; }
      if (!low || this.started == null || now - this.started < WARMUP_MS) { this.lowSince = null; return; }
      if (this.lowSince == null) this.lowSince = now;
      if (now - this.lowSince >= LOW_MS) this.to("audio_only", now);
    } else if (this.state === "audio_only") {
      if (now - this.since >= this.hold) this.to("probing", now);
    } else if (this.state === "probing") {
      if ((low && now - this.since >= PROBE_JUDGED_MS) || this.overfilledCount >= OVERFILLED_SAMPLES) {
        this.hold = Math.min(this.hold * 2, HOLD_MAX_MS);
        this.to("audio_only", now);
      } else if (now - this.since >= PROBE_MS) {
        this.hold = HOLD_MS;
        this.to("video", now, { told: true });
      }
    }
  }

  // Whether what we send overfills the uplink (see the top of this file); counts the samples
  // in a row that say so.
  overfilled(windows, estimate) {
    let overfilled = false;
    for (const w of windows) {
      const rtt = w.upRtt != null ? w.upRtt : w.rtt;
      if (rtt != null && (this.baseRtt == null || rtt < this.baseRtt)) this.baseRtt = rtt;
      const lost = Math.max(w.upFraction || 0, w.upLossPct / 100);
      const queueing = rtt != null && rtt > this.baseRtt + QUEUE_MS;
      // Towards the relay the estimate is aiortc's REMB: conservative, and it fell under
      // 50 kbit/s on a clean leg while the relay's machine was loaded. Only the queue there.
      const low = !w.relay && estimate != null && w.outgoing != null && w.outgoing < FLOOR_BPS;
      // The estimate under the floor is enough by itself: it falls only on evidence (in the
      // mesh Chromium's delay-based estimate fell to 47 kbit/s one second into a 64 kbit/s
      // uplink, while our round trip and losses still looked ordinary).
      if (low || (queueing && lost > OVERFILLED_LOSS)) overfilled = true;
    }
    this.overfilledCount = overfilled ? this.overfilledCount + 1 : 0;
    return overfilled;
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
    this.room.setUplinkAudioLean(this.audioLean);
  }

  to(state, now, { told = false } = {}) {
    const before = this.state;
    this.state = state;
    this.since = now;
    this.lowSince = null;
    this.overfilledCount = 0;
    if (state === "audio_only" || state === "probing") this.estimateHeard = false;
    this.room.setUplinkAudioLean(this.audioLean);
    if (state === "audio_only") {
      this.room.setUplinkVideo(false);
      if (before === "video" || told) this.room.view.toast("Mạng của bạn yếu: đã tạm tắt hình để giữ tiếng. Hình sẽ tự bật lại khi mạng khá hơn.");
    } else if (state === "probing") {
      this.cap(VIDEO_START_BITRATE, now);
      this.room.setUplinkVideo(true);
    } else if (before === "starting") {
      this.room.setUplinkVideo(true);
    } else if (told) {
      this.room.view.toast("Mạng đã khá hơn: đã bật lại hình của bạn.");
    }
  }

  // Whether the microphone stays lean: until the estimate has shown room for the camera
  // above its start cap and for full audio (raise() lifts both together).
  // (Without a camera — the member's choice — only while the uplink was found overfilled.)
  get audioLean() {
    if (!this.room.sendsVideo()) return this.state === "audio_only";
    return !(this.state === "video" && this.videoCap > VIDEO_START_BITRATE);
  }

  // Whether the camera may send now (links made while starting or audio only hold it back).
  get videoAllowed() { return this.state === "video" || this.state === "probing"; }

  get audioOnly() { return this.state === "audio_only"; }
}
