// Round-trip time and packet loss of one RTCPeerConnection, for the quality indicator.
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
