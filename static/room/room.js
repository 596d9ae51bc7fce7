// The meeting room page: wires signalling, local media, the mesh or the relay, and the
// interface. The room starts as a mesh (one PeerLink per participant) and may move to the
// server relay (one RelayLink) on a `topology` message; the old links are kept until the
// relay link is connected, so nobody loses sound or picture during the switch.
import { Signalling } from "./signalling.js";
import { LocalMedia } from "./media.js";
import { PeerLink } from "./peers.js";
import { RelayLink } from "./relay.js";
import { Indicators } from "./health.js";
import { UplinkGuard } from "./uplink.js";
import { RoomView } from "./view.js";
import { forget, rejoinChoice, remember } from "./rejoin.js";

const RELAY = "relay";

const root = document.getElementById("room");
const cfg = {
  meetingId: Number(root.dataset.meeting),
  device: root.dataset.device,
  chair: root.dataset.chair === "1",
  // A join token issued with the page: the first connection needs no extra round trip.
  token: root.dataset.token || null,
};

class Room {
  constructor() {
    this.me = null;
    this.session = null;
    this.participants = new Map();   // id -> participant info
    this.links = new Map();          // id -> PeerLink
    this.streams = new Map();        // id -> MediaStream of what we receive
    this.hands = [];
    this.floor = null;
    this.audioOnly = false;
    this.dataSaver = false;
    this.topology = "mesh";
    this.iceServers = [];
    this.iceTransportPolicy = "all";
    this.unread = 0;
    this.view = new RoomView(this, cfg);
    this.indicators = new Indicators(this, this.view);
    this.uplink = new UplinkGuard(this);
    // The socket opens while the member reads the join screen (see Signalling.preconnect);
    // through the relay, the media link is set up on it before the click (warmRelay).
    this.warmRelay = null;
    this.signalling = new Signalling({ meetingId: cfg.meetingId, device: cfg.device, audio: true, video: true,
                                       token: cfg.token });
    this.signalling.onwarm = (msg) => this.onWarm(msg);
    if (cfg.token) this.signalling.preconnect();
  }

  // What the join screen's socket receives before the click (docs/protocol.md, "Join
  // screen"): `ready`, then through the relay its track list and offer for a link whose
  // upload m-lines carry no track yet, the relay's answers to our pings, or its end.
  // (A refusal's `error` is not shown here: the click's plain hello gets it again.)
  onWarm(msg) {
    if (msg.type === "warm_closed") {
      if (this.warmRelay) { this.warmRelay.close(); this.warmRelay = null; }
      return null;
    }
    return ["ready", "relay_tracks", "offer", "candidate", "pong"].includes(msg.type) ? this.handle(msg) : null;
  }

  onReady(msg) {
    this.iceServers = msg.ice_servers;
    this.iceTransportPolicy = msg.ice_transport_policy || "all";
    if (msg.relay_session && !this.me) this.warmRelay = this.makeRelayLink(msg.relay_session);
  }

  async start({ video }) {
    this.audioOnly = !video;
    this.media = new LocalMedia({ hall: cfg.device === "hall" });
    // The signalling connection says hello while the camera and microphone start: on a slow
    // link its round trips and the devices' start-up overlap. Messages wait for the devices.
    this.signalling.media = { audio: true, video };
    const ready = this.media.start({ audio: true, video });
    this.signalling.onmessage = async (msg) => { await ready; return this.handle(msg); };
    this.signalling.onstate = (state, detail, code) => {
      // After the frames already received (a "removed" or "meeting" frame says why better).
      if (state === "closed") {
        this.signalling.chain.then(() => { if (!this.over) this.end(detail || "Đã ngắt kết nối.", this.closedKind(code)); });
        return;
      }
      this.indicators.signalling(state, detail);
      if (state === "open") setTimeout(() => this.restartStuck(), 0);
    };
    this.signalling.connect();
    const missing = await ready;
    if (missing.length) this.view.toast(`Không dùng được ${missing.join(" và ")} của thiết bị; bạn vẫn có thể nghe và xem.`);
    this.media.onspeaking = (speaking) => this.send({ type: "speaking", speaking });
    this.view.showStage();
    this.view.setLocal(this.media);
    this.remember();
    this.rememberTimer = setInterval(() => this.remember(), 30000);
    this.qualityTimer = setInterval(() => this.measure(), 1000);
    this.refreshCounts();
    this.countsTimer = setInterval(() => this.refreshCounts(), 15000);
    window.addEventListener("pagehide", () => { if (this.signalling && !this.signalling.stopped) this.remember(); this.signalling.stop(); });
  }

  // In the room as of now, and how: a reload within a few minutes joins again (rejoin.js).
  remember() { remember(cfg.meetingId, cfg.device, { video: !this.audioOnly && !!(this.media && this.media.videoTrack) }); }

  // Why a final close came: the server's last error frame says "removed" when the chair
  // removed us; 4000 is another tab or device taking our place.
  closedKind(code) {
    const last = this.signalling && this.signalling.lastError;
    if (last && last.code === "removed") return "removed";
    return code === 4000 ? "replaced" : "refused";
  }

  send(msg) { return this.signalling && this.signalling.send(msg); }

  async handle(msg) {
    switch (msg.type) {
      case "welcome": return this.onWelcome(msg);
      case "ready": return this.onReady(msg);   // the join screen's socket (onWarm)
      // Someone arriving or leaving changes who is present, D's voters and the votes needed.
      case "joined": this.refreshCountsSoon(); return this.onJoined(msg.participant, msg.polite);
      case "left": this.refreshCountsSoon(); return this.onLeft(msg.participant);
      case "participant": this.participants.set(msg.participant.id, msg.participant); return this.view.renderPeople();
      case "offer": case "answer": {
        const link = this.linkFor(msg);
        if (link) await link.onDescription({ type: msg.type, sdp: msg.sdp });
        return;
      }
      case "candidate": { const link = this.linkFor(msg); if (link) await link.onCandidate(msg.candidate); return; }
      case "topology": return this.onTopology(msg);
      case "relay_tracks": {
        const link = this.links.get(RELAY) || this.warmRelay;
        if (link) { link.onRelayTracks(msg); this.view.renderPeople(); }
        return;
      }
      case "renegotiate": {
        const link = this.linkFor(msg);
        const p = this.participants.get(msg.sender);
        if (link && p) this.restartWith(p, link.polite, { answering: true });
        return;
      }
      case "chat": return this.view.addChat(msg.message);
      case "chat_deleted": return this.view.removeChat(msg.message_id);
      case "hands": this.hands = msg.queue; return this.view.renderPeople();
      case "floor": this.floor = msg.participant; return this.view.renderFloor();
      case "mute_request": return this.view.askToMute();
      case "muted": this.setMic(false, { announce: false }); return this.view.toast("Người chủ trì đã tắt micro của bạn.");
      case "removed": this.end(msg.reason, "removed"); return;
      case "waiting": return this.view.waiting(msg.message);
      case "lobby": return this.view.renderLobby(msg.waiting);
      case "meeting": if (msg.status === "closed") this.end(msg.message || "Cuộc họp đã kết thúc.", "closed"); return;
      case "replaced": this.end(msg.message, "replaced"); return;
      case "ice_servers": this.iceServers = msg.ice_servers; return;   // fresh TURN credentials for new links
      case "pong": this.view.serverRtt(performance.now() - msg.t); return;
      case "uplink_loss": return this.indicators.uplinkLoss(msg);
      case "join_token": return;   // kept by signalling.js for the next reconnection
      case "vote":
        if (!this.vote || this.vote.id !== msg.motion.id) this.voted = false;
        this.vote = msg.motion;
        if (msg.notice) this.view.toast(msg.notice, "error");   // a secret ballot voided and run again
        return this.view.renderVote();
      case "vote_cast":
        this.voted = true;
        this.view.toast(msg.choice === null ? "Phiếu kín của bạn đã vào hòm phiếu; phiếu được kiểm khi kết thúc biểu quyết." : "Đã ghi nhận biểu quyết của bạn.");
        return this.view.renderVote();
      case "error":
        // "Not started yet" and "removed" are states the page shows, not failures to pop up.
        if (msg.code === "meeting_not_open" || msg.code === "removed") return;
        return this.view.toast(msg.message, "error");
      default: return;
    }
  }

  linkFor(msg) {
    const link = this.links.get(msg.sender) || (msg.sender === RELAY ? this.warmRelay : null);
    return link && link.session === msg.sender_session ? link : null;
  }

  onWelcome(msg) {
    const kept = msg.resumed && msg.session === this.session && msg.topology === this.topology;
    this.me = msg.you;
    this.session = msg.session;
    this.iceServers = msg.ice_servers;
    this.iceTransportPolicy = msg.ice_transport_policy || "all";
    this.participants = new Map(msg.participants.map((p) => [p.id, p]));
    this.hands = msg.hands;
    this.floor = msg.floor;
    if (kept) {
      // The same session on a new socket (a cut the heartbeat gave up on): the peer
      // connections stand. Connect to whoever came meanwhile, let go of whoever left.
      for (const id of [...this.links.keys()]) if (!msg.peers.includes(id)) this.dropLink(id);
      for (const id of msg.peers) {
        const p = this.participants.get(id);
        const link = this.links.get(id);
        if (id !== RELAY && p && (!link || link.session !== p.session)) this.connectTo(p, msg.polite[id]);
      }
    } else {
      // A new session of ours: every peer connection starts afresh.
      for (const id of [...this.links.keys()]) this.dropLink(id);
      this.topology = msg.topology;
      for (const id of msg.peers) {
        if (id === RELAY) { this.connectRelay(msg.relay_session); continue; }
        const p = this.participants.get(id);
        if (p) this.connectTo(p, msg.polite[id]);
      }
    }
    this.vote = msg.vote;
    this.voted = msg.voted;
    this.view.welcome(msg);
    this.view.renderVote();
    this.announceMedia();
    if (this.dataSaver) this.send({ type: "data_saver", on: true });
  }

  // What we send, as the others should show it (the camera held back by uplink.js counts as off).
  announceMedia() {
    this.send({ type: "media", audio: this.media.micOn, video: this.sendsVideo() && !this.uplink.audioOnly,
                audio_only: this.audioOnly });
  }

  sendsVideo() { return !!(this.media && this.media.videoTrack) && !this.audioOnly; }

  // uplink.js: stop or resume sending video because of our uplink.
  setUplinkVideo(active) {
    for (const link of this.links.values()) link.setVideoActive(active);
    this.announceMedia();
    this.view.controls();
    this.view.decorate("self");   // "đã tạm tắt hình do mạng yếu" on our own tile, or not
  }

  // uplink.js: the microphone lean (while the uplink has not shown room for video and audio).
  setUplinkAudioLean(lean) {
    for (const link of this.links.values()) link.setAudioLean(lean);
  }

  // uplink.js: the most our camera may send, as the uplink allows.
  setUplinkVideoCap(cap) {
    for (const link of this.links.values()) link.setVideoCap(cap);
  }

  // The room moved to the relay: connect to it, then let the direct links go.
  onTopology(msg) {
    this.topology = msg.topology;
    this.view.mode(msg.topology);
    if (!msg.peers.includes(RELAY)) return;
    const link = this.connectRelay(msg.relay_session);
    const old = [...this.links.keys()].filter((id) => !msg.peers.includes(id));
    const dropOld = () => { for (const id of old) if (this.links.get(id) && id !== RELAY) this.dropLink(id); };
    const timer = setTimeout(dropOld, 10000);
    link.whenConnected = () => { clearTimeout(timer); dropOld(); };
  }

  connectRelay(session, givenUp = 0) {
    this.dropLink(RELAY);
    // The link warmed on the join screen, if it is this relay's and still up: the relay adopts
    // it when we enter (realtime/relay/server.py) and offers the others' tracks on it; our
    // microphone and camera go on its upload m-lines now, without renegotiating.
    const warm = this.warmRelay;
    this.warmRelay = null;
    if (warm && warm.session === session && !givenUp && warm.pc.connectionState !== "failed" &&
        warm.pc.connectionState !== "closed") {
      warm.adopted = true;   // for tests: this link was ready before the click
      warm.setTracks(this.media);
      warm.tuneVideo();
      this.links.set(RELAY, warm);
      return warm;
    }
    if (warm) warm.close();
    const link = this.makeRelayLink(session, givenUp);
    this.links.set(RELAY, link);
    return link;
  }

  makeRelayLink(session, givenUp = 0) {
    const link = new RelayLink({
      session, givenUp, iceServers: this.iceServers, iceTransportPolicy: this.iceTransportPolicy, local: this.media || null,
      videoActive: this.uplink.videoAllowed, videoCap: this.uplink.videoCap, audioLean: this.uplink.audioLean,
      signal: (m) => this.send({ ...m, to: RELAY, to_session: session }),
      onTrack: (id, track) => this.gotTrack(id, track),
      onState: (state) => {
        if (state === "connected" && link.whenConnected) { link.whenConnected(); link.whenConnected = null; }
        if (state !== "stuck") return;
        // Stuck on the join screen: give the socket up too; the click starts afresh.
        if (this.warmRelay === link) { this.signalling.dropWarm(); return; }
        if (this.links.get(RELAY) === link) this.restartRelay(link, session);
      },
    });
    return link;
  }

  // Ask the relay for a fresh connection; it offers again. Not while the signalling socket
  // is down: the request would be lost and the new connection would wait for an offer that
  // never comes (after a cut, onWelcome restarts what got stuck meanwhile).
  restartRelay(link, session) {
    if (!this.signallingUp()) { link.stuck = true; return; }
    this.send({ type: "renegotiate", to: RELAY, to_session: session });
    this.connectRelay(session, Math.max(link.number, link.givenUp));
  }

  // Signalling is back: start over the connections that got stuck while it was down.
  restartStuck() {
    for (const [id, link] of [...this.links]) {
      if (!link.stuck || this.links.get(id) !== link) continue;
      link.stuck = false;
      if (link.pc.connectionState === "connected") continue;   // it came back by itself
      if (id === RELAY) { this.restartRelay(link, link.session); continue; }
      const p = this.participants.get(id);
      if (p) this.restartWith(p, link.polite, { answering: false });
    }
  }

  signallingUp() {
    const s = this.signalling;
    return !!(s && s.ws && s.ws.readyState === WebSocket.OPEN && !s.stale);
  }

  videoPaused(id) {
    const link = this.links.get(RELAY);
    return !!(link && link.videoPaused && link.videoPaused.has(id));
  }

  setDataSaver(on) {
    this.dataSaver = on;
    this.send({ type: "data_saver", on });
    this.view.controls();
  }

  onJoined(p, polite) {
    this.participants.set(p.id, p);
    // With the relay, the newcomer's media arrives on the relay link (the relay re-offers).
    if (p.id !== this.me && this.topology === "mesh") this.connectTo(p, polite);
    this.view.renderPeople();
  }

  onLeft(id) {
    this.participants.delete(id);
    this.dropLink(id);
    this.streams.delete(id);
    this.hands = this.hands.filter((h) => h !== id);
    this.view.removeTile(id);
    this.view.renderPeople();
  }

  connectTo(p, polite) {
    this.dropLink(p.id);
    const link = new PeerLink({
      remote: p.id, session: p.session, polite, iceServers: this.iceServers,
      iceTransportPolicy: this.iceTransportPolicy, local: this.media,
      audioOnly: this.audioOnly, videoActive: this.uplink.videoAllowed, videoCap: this.uplink.videoCap, audioLean: this.uplink.audioLean,
      signal: (m) => this.send({ ...m, to: p.id, to_session: p.session }),
      onTrack: (stream, track) => this.gotTrack(p.id, track),
      onState: (state) => {
        this.view.linkState(p.id, state);
        if (state === "stuck" && this.links.get(p.id) === link) {
          // Starting over needs signalling: while the socket is down (a cut), wait for it.
          if (!this.signallingUp()) { link.stuck = true; return; }
          this.restartWith(p, polite, { answering: false });
        }
      },
    });
    this.links.set(p.id, link);
    const stream = new MediaStream();
    this.streams.set(p.id, stream);
    this.view.tile(p.id, stream);
  }

  // Start the connection with `p` over. The impolite side leads: it tells the polite side
  // ("renegotiate") before its new offer, so both drop the old connection in step. The polite
  // side only asks the impolite side to lead.
  restartWith(p, polite, { answering }) {
    if (polite) {
      if (answering) this.connectTo(p, polite);
      else this.send({ type: "renegotiate", to: p.id, to_session: p.session });
      return;
    }
    this.send({ type: "renegotiate", to: p.id, to_session: p.session });
    this.connectTo(p, polite);
  }

  gotTrack(id, track) {
    let stream = this.streams.get(id);
    if (!stream) { stream = new MediaStream(); this.streams.set(id, stream); }
    for (const old of stream.getTracks()) if (old.kind === track.kind) stream.removeTrack(old);
    stream.addTrack(track);
    this.view.tile(id, stream);
  }

  dropLink(id) {
    const link = this.links.get(id);
    if (link) { link.close(); this.links.delete(id); }
  }

  setMic(on, { announce = true } = {}) {
    this.media.setMic(on);
    this.view.controls();
    if (announce || !on) this.announceMedia();
  }

  async setCamera(on) {
    if (on) {
      try { await this.media.startCamera(); } catch { this.view.toast("Không mở được camera.", "error"); return; }
    } else {
      this.media.stopCamera();
    }
    for (const link of this.links.values()) link.setTracks(this.media);
    this.setUplinkAudioLean(this.uplink.audioLean);
    this.view.setLocal(this.media);
    this.announceMedia();
    this.remember();
  }

  async setAudioOnly(on) {
    this.audioOnly = on;
    if (on) this.media.stopCamera();
    else await this.media.startCamera().catch(() => this.view.toast("Không mở được camera.", "error"));
    for (const link of this.links.values()) { link.setTracks(this.media); link.setAudioOnly(on); }
    this.setUplinkAudioLean(this.uplink.audioLean);
    this.view.setLocal(this.media);
    this.announceMedia();
    this.remember();
  }

  raiseHand(raised) { this.send({ type: "hand", raised }); }

  cast(choice) {
    // Padded to the longest choice: an encrypted frame's length must not tell the choice.
    if (this.vote) this.send({ type: "cast", motion_id: this.vote.id, choice, pad: " ".repeat(8 - choice.length) });
  }

  refreshCountsSoon() {
    clearTimeout(this.countsSoon);
    this.countsSoon = setTimeout(() => this.refreshCounts(), 1000);
  }

  async refreshCounts() {
    const r = await fetch(`/meetings/${cfg.meetingId}/attendance.json`, { credentials: "same-origin", cache: "no-store" }).catch(() => null);
    if (r && r.ok) this.view.renderCounts((await r.json()).counts);
  }

  // Every second: the indicators (health.js) and the uplink guard (uplink.js).
  async measure() {
    if (this.measuring) return;
    this.measuring = true;
    try {
      await this.indicators.sample();
      const carrying = [...this.indicators.windows.entries()].filter(([id]) => this.links.has(id))
        .map(([id, w]) => ({ ...w, relay: id === RELAY }));
      this.uplink.observe(carrying);
    } finally {
      this.measuring = false;
    }
  }

  leave() {
    this.send({ type: "leave" });
    this.end("Bạn đã rời phòng họp.");
  }

  end(message, kind = "left") {
    this.over = true;
    if (this.signalling) this.signalling.stop();
    // Another tab of this browser took our place: it keeps the memory for itself.
    if (kind !== "replaced") forget(cfg.meetingId, cfg.device);
    clearInterval(this.rememberTimer);
    clearInterval(this.qualityTimer);
    clearInterval(this.countsTimer);
    clearTimeout(this.countsSoon);
    for (const id of [...this.links.keys()]) this.dropLink(id);
    if (this.media) this.media.stop();
    this.view.ended(message, kind);
  }
}

const room = new Room();
window.chiboRoom = room;   // for tests and debugging
const closeForm = document.getElementById("close-meeting");
if (closeForm) closeForm.addEventListener("submit", (event) => {
  if (!confirm("Kết thúc cuộc họp? Mọi người sẽ rời phòng.")) event.preventDefault();
  else forget(cfg.meetingId, cfg.device);
});
rejoinChoice(cfg.meetingId, cfg.device).then((auto) => room.view.prejoin((options) => room.start(options), auto));
