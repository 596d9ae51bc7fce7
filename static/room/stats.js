// What one RTCPeerConnection's statistics say about the link, over the last few seconds.
//
// getStats() counters grow from the start of the connection; an indicator computed from
// them ("loss since the start") lags by minutes and stays "weak" long after the link
// recovered (issue 15). A LinkMeter keeps the counters of its last samples and answers for a
// window of WINDOW_MS: loss both ways, round-trip time, the browser's uplink estimate, and
// whether audio and video from each remote source still arrive.

export const WINDOW_MS = 5000;

function sum(report, type, pick, filter = () => true) {
  let total = 0;
  report.forEach((s) => { if (s.type === type && filter(s)) total += pick(s) || 0; });
  return total;
}

export class LinkMeter {
  constructor(pc) {
    this.pc = pc;
    this.samples = [];   // [{ at, down: {lost, received}, up: {lost, sent}, bytesByMid, concealed, samples, ... }]
    this.latest = null;
  }

  async sample() {
    const report = await this.pc.getStats();
    const at = performance.now();
    const s = { at, rtt: null, outgoing: null, limitation: null, bytesByMid: new Map(), upRtt: null, upFraction: null,
                downLost: 0, downReceived: 0, upLost: 0, upSent: 0,
                concealed: 0, audioSamples: 0, framesDecoded: 0, videoBytesSent: 0, framesSent: 0 };
    // The pair in use: the transport's selected one (others may be nominated too).
    let selected = null;
    report.forEach((x) => { if (x.type === "transport" && x.selectedCandidatePairId) selected = report.get(x.selectedCandidatePairId); });
    report.forEach((x) => {
      if (x.type === "candidate-pair" && (selected ? x.id === selected.id : x.nominated && x.state === "succeeded")) {
        if (x.currentRoundTripTime != null) s.rtt = x.currentRoundTripTime * 1000;
        if (x.availableOutgoingBitrate != null) s.outgoing = x.availableOutgoingBitrate;
      }
      if (x.type === "inbound-rtp") {
        s.downLost += Math.max(0, x.packetsLost || 0);
        s.downReceived += x.packetsReceived || 0;
        if (x.mid != null) s.bytesByMid.set(x.mid, (s.bytesByMid.get(x.mid) || 0) + (x.bytesReceived || 0));
        if (x.kind === "audio") { s.concealed += x.concealedSamples || 0; s.audioSamples += x.totalSamplesReceived || 0; }
        if (x.kind === "video") s.framesDecoded += x.framesDecoded || 0;
      }
      if (x.type === "remote-inbound-rtp") {
        // What the other end (a peer, or the relay) reports of what we send: our uplink.
        s.upLost += Math.max(0, x.packetsLost || 0);
        // The last receiver report's figures, not a sum since the start: they answer within
        // a report interval when video overfills the uplink (its queue, then its drops).
        if (x.fractionLost != null) s.upFraction = Math.max(s.upFraction || 0, x.fractionLost);
        if (x.kind === "audio" && x.roundTripTime != null && x.roundTripTime > 0) s.upRtt = x.roundTripTime * 1000;
      }
      if (x.type === "outbound-rtp") {
        s.upSent += x.packetsSent || 0;
        if (x.kind === "video") {
          s.videoBytesSent += x.bytesSent || 0;
          s.framesSent += x.framesSent || 0;
          if (x.qualityLimitationReason) s.limitation = x.qualityLimitationReason;
        }
      }
    });
    // Inbound streams carry their mid only through the transceivers: fill it in.
    if (!s.bytesByMid.size) {
      for (const t of this.pc.getTransceivers()) {
        if (t.mid == null || !t.receiver) continue;
        const stats = await t.receiver.getStats().catch(() => null);
        if (stats) s.bytesByMid.set(t.mid, sum(stats, "inbound-rtp", (x) => x.bytesReceived));
      }
    }
    this.samples.push(s);
    while (this.samples.length > 2 && at - this.samples[1].at >= WINDOW_MS) this.samples.shift();
    this.latest = s;
    return this.window();
  }

  // The figures over the window (from the oldest sample kept to the latest).
  window() {
    const a = this.samples[0];
    const b = this.latest;
    if (!a || !b) return null;
    const dLost = b.downLost - a.downLost;
    const dRecv = b.downReceived - a.downReceived;
    const uLost = b.upLost - a.upLost;
    const uSent = b.upSent - a.upSent;
    const seconds = Math.max((b.at - a.at) / 1000, 0.001);
    return {
      seconds,
      rtt: b.rtt,
      upRtt: b.upRtt,
      upFraction: b.upFraction,
      outgoing: b.outgoing,
      limitation: b.limitation,
      downLossPct: dLost + dRecv > 0 ? (100 * dLost) / (dLost + dRecv) : 0,
      upLossPct: uSent > 0 ? Math.min(100, (100 * Math.max(0, uLost)) / uSent) : 0,
      concealedPct: b.audioSamples - a.audioSamples > 0 ? (100 * (b.concealed - a.concealed)) / (b.audioSamples - a.audioSamples) : 0,
      fpsIn: (b.framesDecoded - a.framesDecoded) / seconds,
      fpsOut: (b.framesSent - a.framesSent) / seconds,
      videoKbpsOut: ((b.videoBytesSent - a.videoBytesSent) * 8) / seconds / 1000,
    };
  }

  // Whether bytes arrived on `mid` between the last two samples (null: not known yet).
  flowing(mid) {
    const n = this.samples.length;
    if (n < 2) return null;
    const before = this.samples[n - 2].bytesByMid.get(mid);
    const now = this.latest.bytesByMid.get(mid);
    if (now == null) return null;
    return now > (before || 0);
  }

  // Whether any inbound media arrived between the last two samples.
  anyFlowing() {
    const n = this.samples.length;
    if (n < 2) return null;
    return this.latest.downReceived > this.samples[n - 2].downReceived;
  }
}

// Round-trip time and packet loss since the start (kept for callers that want totals).
export async function connectionStats(pc) {
  const report = await pc.getStats();
  const out = { rtt: null, lost: 0, received: 0 };
  report.forEach((s) => {
    if (s.type === "candidate-pair" && s.state === "succeeded" && s.nominated && s.currentRoundTripTime != null) {
      out.rtt = s.currentRoundTripTime * 1000;
    }
    if (s.type === "inbound-rtp") { out.lost += s.packetsLost || 0; out.received += s.packetsReceived || 0; }
  });
  return out;
}
