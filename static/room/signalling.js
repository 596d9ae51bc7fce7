// Signalling: one WebSocket to /ws/meetings/{id}, with a heartbeat, reconnecting by itself.
//
// Every (re)connection uses a fresh short-lived join token (the page carries one for the
// first connection, the server sends a new one every minute for the next; only when none is
// fresh is one fetched), then says hello. Incoming
// frames are handed to `onmessage` strictly in order (one promise chain), because SDP and
// candidates must be applied in the order they were sent.
//
// Heartbeat (docs/protocol.md, "Heartbeat"): a socket whose network died can look open for
// minutes. We ping every second; 2.5 s without a frame from the server shows "reconnecting"
// (frames arriving again put it back), 6 s gives the socket up and connects anew, naming our
// session so that the server keeps it and our peer connections live on. Token fetch and
// socket open are each abandoned after 8 s (a dead network does not answer; a weak one may
// take seconds), so attempts repeat while the network is down and one succeeds soon after.
//
// The join screen's socket (issue 15, docs/protocol.md "Join screen"): opened when the page
// loads, it says `hello` with `warm` at once — authenticated, not in the room: no presence, no
// roster line — and gets `ready`, then in a relay room the relay's offer of a link that
// carries nothing yet (room.js answers it, so ICE and DTLS are done before the click). The
// click says `join` on that socket. Until then it pings like any other; if it closes or goes
// silent the click falls back to a new socket and a plain hello.
//
// Close codes 4000/4400/4401/4403/4404 are final (a 4400 after a late `hello` is not: a weak
// network retries); 4409 (meeting not open) retries slowly; anything else retries with backoff.

export const PROTOCOL_VERSION = 1;
const FINAL_CODES = new Set([4000, 4400, 4401, 4403, 4404]);
export const PING_EVERY_MS = 1000;
export const STALE_AFTER_MS = 2500;
export const GIVE_UP_AFTER_MS = 6000;
const ATTEMPT_TIMEOUT_MS = 8000;
const TOKEN_LIFETIME_MS = 90_000;   // the server's tokens live 120 s; keep a margin

// Whether this browser can send RED audio (the relay then offers it first: docs/protocol.md).
export function redSupported() {
  try {
    return !!(window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities &&
              RTCRtpReceiver.getCapabilities("audio").codecs.some((c) => c.mimeType.toLowerCase() === "audio/red"));
  } catch { return false; }
}

export class Signalling {
  constructor({ meetingId, device, audio, video, token = null }) {
    this.meetingId = meetingId;
    this.device = device;
    this.media = { audio, video };
    this.ws = null;
    this.chain = Promise.resolve();
    this.attempt = 0;
    this.stopped = false;
    this.lastError = null;
    this.session = null;          // ours, from welcome: named in hello when reconnecting
    this.stale = false;
    this.lastHeard = 0;
    this.pageToken = token ? { token, at: performance.now() } : null;
    this.warm = null;             // the join screen's socket (preconnect), until connect() takes it
    this.warmHello = false;       // whether it said its (warm) hello
    this.warmHeard = 0;
    this.onmessage = async () => {};
    this.onwarm = async () => {};  // what the join screen's socket receives before `join`
    this.onstate = () => {};      // ("connecting" | "open" | "reconnecting" | "waiting" | "closed", detail)
    this.heartbeat = setInterval(() => this.beat(), PING_EVERY_MS / 2);
  }

  async tokenFor() {
    const page = this.pageToken;
    this.pageToken = null;       // one use: a reconnection gets a fresh one
    if (page && performance.now() - page.at < TOKEN_LIFETIME_MS) return page.token;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ATTEMPT_TIMEOUT_MS);
    try {
      const r = await fetch(`/meetings/${this.meetingId}/room/token?device=${this.device}`,
                            { credentials: "same-origin", cache: "no-store", signal: abort.signal });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) throw Object.assign(new Error(body.message || "Không lấy được mã tham gia."), { final: r.status < 500 });
      return body.token;
    } finally {
      clearTimeout(timer);
    }
  }

  socketUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}/ws/meetings/${this.meetingId}`;
  }

  // Open the socket while the member is still on the join screen and say a warm hello on it:
  // on a 300 ms link its TCP and HTTP upgrade round trips, the authentication and (through
  // the relay) the media link's set-up are then done before the click, or under way.
  preconnect() {
    if (this.warm || this.ws || this.stopped || !this.pageToken) return;
    const token = this.pageToken.token;   // kept: a plain hello may still need it if this socket fails
    const ws = new WebSocket(this.socketUrl());
    this.warm = ws;
    ws.onopen = () => {
      this.warmHello = true;
      this.warmHeard = performance.now();
      ws.send(JSON.stringify({ type: "hello", version: PROTOCOL_VERSION, token, device: this.device,
                               audio: this.media.audio, video: this.media.video, red: redSupported(), warm: true }));
      if (ws.joinOnOpen) ws.joinOnOpen();
    };
    ws.onmessage = (event) => this.receive(ws, event);
    ws.onclose = () => this.dropWarm(ws);
    ws.onerror = () => {};
  }

  // The join screen's socket closed or went silent before the click: the click will open a
  // new one (and room.js drops the relay link it was preparing).
  dropWarm(ws = this.warm) {
    if (!ws || this.warm !== ws) return;
    this.warm = null;
    this.warmHello = false;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try { ws.close(1000, "join screen"); } catch { /* closing already */ }
    this.chain = this.chain.then(() => this.onwarm({ type: "warm_closed" })).catch((e) => console.error("warm", e));
  }

  receive(ws, event) {
    if (ws === this.warm) {
      this.warmHeard = performance.now();
      let msg;
      try { msg = JSON.parse(event.data); } catch { return; }
      this.chain = this.chain.then(() => this.onwarm(msg)).catch((e) => console.error(msg.type, e));
      return;
    }
    if (ws !== this.ws) return;  // a late frame from a socket we replaced
    this.heard();
    let msg;
    try { msg = JSON.parse(event.data); } catch { return; }
    if (msg.type === "welcome") { this.attempt = 0; this.session = msg.session; this.onstate("open"); }
    // A token for the next reconnection: it will need no request of its own.
    if ((msg.type === "welcome" && msg.join_token) || msg.type === "join_token") {
      this.pageToken = { token: msg.join_token || msg.token, at: performance.now() };
    }
    if (msg.type === "error") this.lastError = msg;
    this.chain = this.chain.then(() => this.onmessage(msg)).catch((e) => console.error(msg.type, e));
  }

  // The click, on the join screen's socket: `join` now (or right after its hello, if it is
  // still opening). Returns false when there is no such socket to use.
  joinWarm() {
    const ws = this.warm;
    if (!ws || this.session || ws.readyState > WebSocket.OPEN) return false;
    this.warm = null;
    this.ws = ws;
    this.lastError = null;
    const join = () => {
      this.lastHeard = performance.now();
      ws.send(JSON.stringify({ type: "join", audio: this.media.audio, video: this.media.video }));
    };
    if (this.warmHello) join(); else ws.joinOnOpen = join;
    return true;
  }

  async connect() {
    if (this.stopped) return;
    this.onstate(this.attempt || this.session ? "reconnecting" : "connecting");
    if (this.joinWarm()) { this.watch(this.ws); return; }
    let token;
    try {
      token = await this.tokenFor();
    } catch (e) {
      if (e.final) { this.stop(); this.onstate("closed", e.message); return; }
      return this.retry();
    }
    if (this.stopped) return;
    this.lastError = null;   // the close that ends this attempt is judged by this attempt's error
    let ws = this.warm;
    this.warm = null;
    if (!ws || ws.readyState > WebSocket.OPEN) ws = new WebSocket(this.socketUrl());
    this.ws = ws;
    const hello = () => {
      this.lastHeard = performance.now();
      ws.send(JSON.stringify({ type: "hello", version: PROTOCOL_VERSION, token, device: this.device,
                               audio: this.media.audio, video: this.media.video, session: this.session,
                               red: redSupported() }));
    };
    if (ws.readyState === WebSocket.OPEN) hello(); else ws.onopen = hello;
    this.watch(ws);
  }

  // Frames and the close of the socket in use (a plain hello's, or the join screen's after `join`).
  watch(ws) {
    const openTimer = setTimeout(() => { if (this.ws === ws && ws.readyState !== WebSocket.OPEN) this.abandon(ws); },
                                 ATTEMPT_TIMEOUT_MS);
    if (ws.readyState !== WebSocket.OPEN) ws.addEventListener("open", () => clearTimeout(openTimer), { once: true });
    else clearTimeout(openTimer);
    ws.onmessage = (event) => this.receive(ws, event);
    ws.onclose = (event) => {
      clearTimeout(openTimer);
      if (ws !== this.ws) return;
      this.ws = null;
      if (this.stopped) return;
      const reason = this.lastError && this.lastError.message;
      const late = event.code === 4400 && this.lastError && this.lastError.code === "timeout";
      if (FINAL_CODES.has(event.code) && !late) { this.stop(); this.onstate("closed", reason, event.code); return; }
      if (event.code === 4409) { this.onstate("waiting", reason); this.retry(10000); return; }
      this.retry();
    };
  }

  heard() {
    this.lastHeard = performance.now();
    if (this.stale) { this.stale = false; if (this.session) this.onstate("open"); }
  }

  // Every half second: ping each second while open; notice silence.
  beat() {
    this.beatWarm();
    const ws = this.ws;
    if (this.stopped || !ws || ws.readyState !== WebSocket.OPEN) return;
    const now = performance.now();
    if (!this.lastPing || now - this.lastPing >= PING_EVERY_MS - 50) {
      this.lastPing = now;
      ws.send(JSON.stringify({ type: "ping", t: now }));
    }
    const silent = now - this.lastHeard;
    if (silent > GIVE_UP_AFTER_MS) { this.abandon(ws); return; }
    if (silent > STALE_AFTER_MS && !this.stale) { this.stale = true; this.onstate("reconnecting", "heartbeat"); }
  }

  // The join screen's socket pings too (the server closes one silent for 8 s), and is given
  // up when the server has been silent for longer than the heartbeat allows.
  beatWarm() {
    const ws = this.warm;
    if (!ws || !this.warmHello || ws.readyState !== WebSocket.OPEN) return;
    const now = performance.now();
    if (now - this.warmHeard > GIVE_UP_AFTER_MS) { this.dropWarm(ws); return; }
    if (!this.warmPing || now - this.warmPing >= PING_EVERY_MS - 50) {
      this.warmPing = now;
      ws.send(JSON.stringify({ type: "ping", t: now }));
    }
  }

  // Give a socket up without waiting for its close handshake (its network may be gone).
  abandon(ws) {
    if (ws !== this.ws) return;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try { ws.close(4001, "heartbeat"); } catch { /* already closing */ }
    this.stale = true;
    this.onstate("reconnecting", "heartbeat");
    this.retry(300 + Math.random() * 400);
  }

  retry(delay) {
    if (this.stopped) return;
    this.attempt += 1;
    // While a session is to be resumed (a cut), keep trying every few seconds; otherwise back off.
    const cap = this.session ? 3000 : 15000;
    const backoff = delay || Math.min(cap, 500 * 2 ** Math.min(this.attempt, 5)) * (0.75 + Math.random() / 2);
    this.onstate("reconnecting");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), backoff);
  }

  send(msg) {
    const ws = this.ws || (this.warmHello ? this.warm : null);   // before the click: the join screen's
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  // Drop the socket as a network failure would (used by the "reconnect" button and tests).
  drop() {
    if (this.ws) this.ws.close(4001, "client reconnect");
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(1000, "leave"); }
    if (this.warm) { const ws = this.warm; this.warm = null; ws.close(1000, "leave"); }
  }
}
