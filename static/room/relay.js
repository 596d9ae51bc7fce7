// The one peer connection with the server relay (topology "relay"; docs/protocol.md).
//
// The relay always offers and we always answer: before each offer it sends `relay_tracks`,
// naming the two upload m-lines (our microphone and camera go there, sendonly) and whose
// audio or video every other m-line carries (receive only). We never offer to the relay:
// `negotiationneeded` is ignored, and camera changes use replaceTrack, which needs no
// negotiation. A stuck connection is started over with `renegotiate` (room.js), after which
// the relay offers on a new connection.

import { VIDEO_START_BITRATE, preferRed, tuneSenders } from "./peers.js";   // the same caps and codecs as the mesh
import { connectionStats } from "./stats.js";
import { watchConnection } from "./watch.js";

// How long an answer waits for our first ICE candidates (host ones come within milliseconds
// of setLocalDescription; server-reflexive and TURN ones that take round trips are trickled
// after the answer, as before).
const GATHER_WAIT_MS = 200;

function firstCandidates(pc, ms) {
  if (pc.iceGatheringState === "complete" || pc.localDescription.sdp.includes("a=candidate")) return Promise.resolve();
  return new Promise((resolve) => {
    let timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      pc.removeEventListener("icecandidate", onCandidate);
      pc.removeEventListener("icegatheringstatechange", onState);
      resolve();
    }
    function onCandidate() { clearTimeout(timer); timer = setTimeout(finish, 10); }   // its siblings follow at once
    function onState() { if (pc.iceGatheringState === "complete") finish(); }
    pc.addEventListener("icecandidate", onCandidate);
    pc.addEventListener("icegatheringstatechange", onState);
  });
}

export class RelayLink {
  constructor({ session, iceServers, iceTransportPolicy = "all", local, signal, onTrack, onState, videoActive = true,
                videoCap = VIDEO_START_BITRATE, audioLean = true, givenUp = 0 }) {
    this.remote = "relay";
    this.session = session;
    this.polite = true;
    this.relay = true;
    this.local = local;
    this.signal = signal;
    this.onTrack = onTrack;
    this.onState = onState;
    this.upload = {};
    this.tracks = new Map();   // mid -> { participant, kind }
    this.videoPaused = new Set();
    this.videoReduced = new Set();
    this.videoActive = videoActive;
    this.videoCap = videoCap;
    this.audioLean = audioLean;
    this.iceTransportPolicy = iceTransportPolicy;
    // The relay's number for the connection behind this link (relay_tracks.link), and the
    // highest one we gave up on: its track list and offer may still be on their way after
    // our `renegotiate`, and answering them with this new connection would pair it with a
    // connection the relay has closed (the new one would then stay "new").
    this.number = 0;
    this.givenUp = givenUp;
    this.ignoring = false;
    // iceTransportPolicy "relay" (a server setting) holds here as in the mesh: media only
    // through the TURN server, so the relay never learns the member's own addresses.
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy, bundlePolicy: "max-bundle" });
    this.pc = pc;
    pc.onicecandidate = ({ candidate }) =>
      this.signal({ type: "candidate", candidate: candidate ? candidate.toJSON() : null });
    pc.ontrack = ({ track, transceiver }) => {
      const who = this.tracks.get(transceiver.mid);
      if (who) this.onTrack(who.participant, track);
    };
    this.unwatch = watchConnection(pc, (state) => this.onState(state), () => this.tuneVideo());
  }

  onRelayTracks(msg) {
    this.ignoring = !!msg.link && msg.link <= this.givenUp;
    if (this.ignoring) return;
    if (msg.link) this.number = msg.link;
    this.upload = msg.upload;
    this.tracks = new Map(msg.tracks.map((t) => [t.mid, { participant: t.participant, kind: t.kind }]));
    this.videoPaused = new Set(msg.video_paused);
    this.videoReduced = new Set(msg.video_reduced || []);
  }

  uploadTransceiver(kind) {
    return this.pc.getTransceivers().find((t) => t.mid != null && t.mid === this.upload[kind]);
  }

  // `local` is null on the join screen (a warm link: the upload m-lines carry nothing yet).
  setTracks(local) {
    this.local = local;
    const audio = this.uploadTransceiver("audio");
    const video = this.uploadTransceiver("video");
    if (audio) audio.sender.replaceTrack((local && local.audioTrack) || null);
    if (video) video.sender.replaceTrack((local && local.videoTrack) || null);
  }

  // Audio only: the camera is already stopped (no upload); the server tells the relay to
  // stop sending us video (the `media` message). Nothing to renegotiate.
  setAudioOnly() { this.setTracks(this.local); }

  async tuneVideo() {
    const video = this.uploadTransceiver("video");
    const audio = this.uploadTransceiver("audio");
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
    if (description.type !== "offer" || this.ignoring) return;   // we never offer to the relay
    const pc = this.pc;
    await pc.setRemoteDescription(description);
    for (const t of pc.getTransceivers()) {
      if (t.mid === this.upload.audio || t.mid === this.upload.video) t.direction = "sendonly";
      else if (this.tracks.has(t.mid)) t.direction = "recvonly";
      else if (!t.stopped) t.direction = "inactive";
      // RED when the relay offers it (it forwards what the publisher sends); opus otherwise.
      if (t.receiver.track && t.receiver.track.kind === "audio" && !t.stopped) preferRed(t);
    }
    this.setTracks(this.local);
    await pc.setLocalDescription();
    // Our host candidates in the answer itself: the relay then starts its checks the moment
    // the answer is in, instead of when the first trickled candidate follows it half a round
    // trip later over the same weak link. (TURN only: nothing quick to wait for.)
    if (this.iceTransportPolicy !== "relay") await firstCandidates(pc, GATHER_WAIT_MS);
    this.signal({ type: "answer", sdp: pc.localDescription.sdp });
    if (pc.connectionState === "connected") this.tuneVideo();
  }

  async onCandidate(candidate) {
    try { await this.pc.addIceCandidate(candidate || null); } catch (e) { console.warn("candidate", e); }
  }

  stats() {
    return connectionStats(this.pc);
  }

  close() {
    this.unwatch();
    this.pc.close();
  }
}
