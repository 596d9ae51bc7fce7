// Peer connections of the mesh, one per remote participant session, with "perfect
// negotiation" (polite/impolite). The server tells us, per pair, whether we are polite.
//
// Rules that make browsers and aiortc peers work together (aiortc has no rollback, no
// restartIce and does not trickle):
//  * a new session of either side means a new RTCPeerConnection;
//  * the polite side does not offer first: it waits for the impolite side's offer;
//  * the impolite side ignores an offer that collides with its own;
//  * candidates are trickled; null marks the end of them;
//  * a connection that fails, stays disconnected, or never connects is "stuck": the pair
//    starts over with new connections ("renegotiate"). ICE restarts are not used: aiortc
//    answers them with its old credentials and nothing changes.

import { connectionStats } from "./stats.js";
import { watchConnection } from "./watch.js";

export const VIDEO_MAX_BITRATE = 250_000;   // weak mobile networks first
export const VIDEO_MAX_FRAMERATE = 15;
// The camera starts here and rises to VIDEO_MAX_BITRATE once the uplink shows it carries
// more (uplink.js): starting at the maximum overfilled a 64 kbit/s uplink for seconds before
// the guard could tell, and the member's audio queued and dropped behind the video.
export const VIDEO_START_BITRATE = 80_000;
// While the uplink cannot carry video (uplink.js), the microphone too sends less: Opus at
// 12 kbit/s with RED (each packet carries the previous frame too) and the packet headers
// come to about 55 kbit/s on the wire, under a 64 kbit/s uplink (20 kbit/s came to ~70).
export const AUDIO_LOW_BITRATE = 12_000;

// Opus with RED (RFC 2198) first: each packet also carries the previous frame, so a single
// lost packet is repaired end to end instead of concealed. Chromium sends RED when the
// negotiated codec list puts audio/red (with its a=fmtp line) first; the rest stay as
// fallbacks for a peer without RED. Called on audio transceivers before each offer/answer.
export function preferRed(transceiver) {
  try {
    const caps = window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities("audio");
    if (!caps || !transceiver.setCodecPreferences) return;
    const isRed = (c) => c.mimeType.toLowerCase() === "audio/red";
    const red = caps.codecs.filter(isRed);
    if (red.length) transceiver.setCodecPreferences([...red, ...caps.codecs.filter((c) => !isRed(c))]);
  } catch (e) { console.warn("RED", e); }
}

// The caps every video sender keeps, and whether it sends at all (uplink.js).
export async function tuneSenders(videoSender, audioSender, videoActive, videoCap = VIDEO_MAX_BITRATE) {
  if (videoSender) {
    const params = videoSender.getParameters();
    if (params.encodings && params.encodings.length) {
      params.encodings[0].maxBitrate = Math.min(videoCap, VIDEO_MAX_BITRATE);
      params.encodings[0].maxFramerate = VIDEO_MAX_FRAMERATE;
      params.encodings[0].active = videoActive;
      params.encodings[0].priority = "low";
      params.encodings[0].networkPriority = "low";
      try { await videoSender.setParameters(params); } catch (e) { console.warn("setParameters", e); }
    }
  }
  if (audioSender) {
    const params = audioSender.getParameters();
    if (params.encodings && params.encodings.length) {
      // Lean while the camera is off for the uplink's sake, and while it is still at its
      // start cap (the uplink has not yet shown room for more): Opus with RED at its usual
      // rate is ~85 kbit/s on the wire, more than a 64 kbit/s uplink carries by itself.
      if (videoActive && videoCap > VIDEO_START_BITRATE) delete params.encodings[0].maxBitrate;
      else params.encodings[0].maxBitrate = AUDIO_LOW_BITRATE;
      // Audio first wherever the browser ranks what it sends (its share of the estimate,
      // and DSCP where the network honours it): a meeting survives without picture.
      params.encodings[0].priority = "high";
      params.encodings[0].networkPriority = "high";
      try { await audioSender.setParameters(params); } catch (e) { console.warn("setParameters", e); }
    }
  }
}

export class PeerLink {
  constructor({ remote, session, polite, iceServers, iceTransportPolicy = "all", local, signal, onTrack, onState, audioOnly,
                videoActive = true, videoCap = VIDEO_START_BITRATE, audioLean = true }) {
    this.remote = remote;
    this.session = session;
    this.polite = polite;
    this.signal = signal;
    this.onTrack = onTrack;
    this.onState = onState;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.settingAnswer = false;
    this.local = local;
    this.audioOnly = audioOnly;
    this.videoActive = videoActive;
    this.videoCap = videoCap;
    this.audioLean = audioLean;
    // iceTransportPolicy "relay" (a server setting): media only through the TURN server.
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy, bundlePolicy: "max-bundle" });
    this.pc = pc;
    if (!polite) {
      // The impolite side offers: it creates the transceivers. The polite side answers and
      // takes the transceivers the offer creates (ones made by addTransceiver would not be
      // matched to the offer's media sections, and would need a second negotiation).
      preferRed(pc.addTransceiver("audio", { direction: "sendrecv", streams: [local.stream] }));
      pc.addTransceiver("video", { direction: audioOnly ? "inactive" : "sendrecv", streams: [local.stream] });
      this.setTracks(local);
    }
    pc.onnegotiationneeded = async () => {
      if (this.polite && !pc.remoteDescription) return;   // wait for the impolite side
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        this.signal({ type: pc.localDescription.type, sdp: pc.localDescription.sdp });
      } catch (e) {
        console.warn("negotiation", this.remote, e);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) =>
      this.signal({ type: "candidate", candidate: candidate ? candidate.toJSON() : null });
    pc.ontrack = ({ track, streams }) => this.onTrack(streams[0] || new MediaStream([track]), track);
    this.unwatch = watchConnection(pc, (state) => this.onState(state), () => this.tuneVideo());
  }

  transceiver(kind) {
    return this.pc.getTransceivers().find((t) => t.receiver.track && t.receiver.track.kind === kind && !t.stopped);
  }

  setTracks(local) {
    this.local = local;
    const audio = this.transceiver("audio");
    const video = this.transceiver("video");
    if (audio) audio.sender.replaceTrack(local.audioTrack || null);
    if (video) video.sender.replaceTrack(local.videoTrack || null);
  }

  setAudioOnly(audioOnly) {
    // "inactive" stops video both ways: nothing sent, nothing received. Renegotiates.
    this.audioOnly = audioOnly;
    const video = this.transceiver("video");
    if (video) video.direction = audioOnly ? "inactive" : "sendrecv";
  }

  async tuneVideo() {
    const video = this.transceiver("video");
    const audio = this.transceiver("audio");
    await tuneSenders(video && video.sender, audio && audio.sender, this.videoActive, this.videoCap, this.audioLean);
  }

  setVideoActive(active) {
    this.videoActive = active;
    return this.tuneVideo();
  }

  setAudioLean(lean) {
    if (lean === this.audioLean) return null;
    this.audioLean = lean;
    return this.tuneVideo();
  }

  setVideoCap(cap) {
    if (cap === this.videoCap) return null;
    this.videoCap = cap;
    return this.tuneVideo();
  }

  async onDescription(description) {
    const pc = this.pc;
    const readyForOffer = !this.makingOffer && (pc.signalingState === "stable" || this.settingAnswer);
    const collision = description.type === "offer" && !readyForOffer;
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) return;
    this.settingAnswer = description.type === "answer";
    await pc.setRemoteDescription(description);   // implicit rollback on the polite side
    this.settingAnswer = false;
    if (description.type === "offer") {
      for (const t of pc.getTransceivers()) {
        const kind = t.receiver.track && t.receiver.track.kind;
        if (kind === "audio") { t.direction = "sendrecv"; preferRed(t); }
        if (kind === "video") t.direction = this.audioOnly ? "inactive" : "sendrecv";
      }
      this.setTracks(this.local);
      await pc.setLocalDescription();
      this.signal({ type: "answer", sdp: pc.localDescription.sdp });
    }
  }

  async onCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate || null);
    } catch (e) {
      if (!this.ignoreOffer) console.warn("candidate", e);
    }
  }

  stats() {
    return connectionStats(this.pc);
  }

  close() {
    this.unwatch();
    this.pc.close();
  }
}
