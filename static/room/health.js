// The room's indicators, computed every second from what actually flows:
//
//  * the connection label: "Đang kết nối…" until sound or picture from someone arrives
//    (a signalling connection alone is not a meeting), "Đã kết nối" while it flows,
//    "Đang kết nối lại…" when the signalling heartbeat goes silent or everyone's media has
//    stopped arriving for STALL_MS;
//  * our quality ("Mạng: Tốt / Trung bình / Yếu") from the last few seconds (stats.js), both
//    ways: what we lose receiving, what the other end reports we lose sending, and through
//    the relay what it measured of our uplink (`uplink_loss`); sent to the room on change;
//  * flags on the others' tiles: "mạng yếu" when the relay measures their uplink losing
//    (their own statistics are honest only about what they receive), "mất tín hiệu" when
//    nothing from them has arrived for STALL_MS though they send.

import { LinkMeter } from "./stats.js";

export const STALL_MS = 2500;
const WEAK_UPLINK_PCT = 4;

export function qualityLevel({ lossPct, rtt }) {
  if (lossPct >= 4 || rtt >= 500) return "poor";
  if (lossPct >= 1.5 || rtt >= 250) return "fair";
  return "good";
}

export class Indicators {
  constructor(room, view) {
    this.room = room;
    this.view = view;
    this.meters = new WeakMap();       // link -> LinkMeter
    this.signal = "idle";
    this.detail = null;
    this.everFlowed = false;
    this.lastFlow = 0;
    this.heardFrom = new Map();        // participant -> last time media from them arrived
    this.uplink = new Map();           // participant -> loss % the relay measured
    this.uplinkAt = 0;
    this.windows = new Map();          // link key -> last window (the bench and uplink.js read it)
    this.shown = null;
  }

  signalling(state, detail) {
    this.signal = state;
    this.detail = detail;
    this.render();
  }

  uplinkLoss(msg) {
    this.uplink = new Map(Object.entries(msg.loss_pct || {}));
    this.uplinkAt = performance.now();
    for (const id of this.uplink.keys()) this.view.decorate(id);
  }

  // Who among the others should be sending us something right now.
  senders() {
    return [...this.room.participants.values()].filter((p) => p.id !== this.room.me && p.status !== "reconnecting"
      && (p.audio || (p.video && !p.audio_only)));
  }

  async sample() {
    const now = performance.now();
    let worstRtt = 0;
    let down = 0;
    let up = 0;
    for (const [key, link] of this.room.links) {
      let meter = this.meters.get(link);
      if (!meter) { meter = new LinkMeter(link.pc); this.meters.set(link, meter); }
      const w = await meter.sample().catch(() => null);
      if (!w) continue;
      this.windows.set(key, w);
      if (w.rtt != null) worstRtt = Math.max(worstRtt, w.rtt);
      down = Math.max(down, w.downLossPct);
      up = Math.max(up, w.upLossPct);
      if (link.relay) {
        for (const [mid, who] of link.tracks) if (meter.flowing(mid)) this.heardFrom.set(who.participant, now);
      } else if (meter.anyFlowing()) {
        this.heardFrom.set(key, now);
      }
    }
    if (this.room.me && this.uplink.has(this.room.me) && now - this.uplinkAt < 5000) {
      up = Math.max(up, this.uplink.get(this.room.me));
    }
    const flowing = [...this.heardFrom.values()].some((t) => now - t < STALL_MS);
    if (flowing) { this.everFlowed = true; this.lastFlow = now; }
    const level = qualityLevel({ lossPct: Math.max(down, up), rtt: worstRtt });
    this.lossPct = Math.max(down, up);
    this.rtt = worstRtt;
    // A new level holds for 3 samples before it shows (and goes to the room): a link near a
    // threshold would otherwise flip the label, and everyone's tile, every second.
    this.candidateCount = level === this.lastLevel ? (this.candidateCount || 0) + 1 : 1;
    this.lastLevel = level;
    if (level !== this.quality && (this.quality == null || this.candidateCount >= 3)) {
      this.quality = level;
      this.room.send({ type: "quality", level, rtt_ms: Math.round(worstRtt), loss_pct: Math.round(this.lossPct * 10) / 10 });
    }
    if (this.quality) this.view.quality(this.quality);
    for (const p of this.senders()) this.view.decorate(p.id);
    this.render();
  }

  // The connection label, from the signalling state and what flows.
  derived() {
    const s = this.signal;
    if (s !== "open") return s;
    const senders = this.senders();
    if (!senders.length) return "open";
    if (!this.everFlowed) return "connecting";
    return performance.now() - this.lastFlow < STALL_MS ? "open" : "reconnecting";
  }

  render() {
    const state = this.derived();
    if (state === this.shown && state !== "closed" && state !== "waiting") return;
    this.shown = state;
    this.view.connection(state, this.detail);
  }

  // Extra words for a participant's tile.
  flags(id) {
    const out = [];
    const p = this.room.participants.get(id);
    if (id === this.room.me) {
      if (this.room.uplink && this.room.uplink.audioOnly) out.push("đã tạm tắt hình do mạng yếu");
      return out;
    }
    if (!p) return out;
    const relay = this.room.links.get("relay");
    if (relay && relay.videoReduced && relay.videoReduced.has(id) && p.video) out.push("hình chậm do mạng yếu");
    const loss = this.uplink.get(id);
    if (loss != null && loss >= WEAK_UPLINK_PCT && p.quality !== "poor" && performance.now() - this.uplinkAt < 5000) {
      out.push("mạng yếu");
    }
    const heard = this.heardFrom.get(id);
    if (p.status !== "reconnecting" && (p.audio || p.video) && heard != null && performance.now() - heard >= STALL_MS) {
      out.push("mất tín hiệu");
    }
    return out;
  }
}
