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
    this.warm = null;             // a socket opened ahead of the click (preconnect)
    this.onmessage = async () => {};
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

  // Open the socket while the member is still on the join screen: on a 300 ms link its TCP
  // and HTTP upgrade round trips are then done before the click. Nothing is said until
  // connect() (the server closes a silent socket after 10 s; connect() then opens another).
  preconnect() {
    if (this.warm || this.ws || this.stopped) return;
    const ws = new WebSocket(this.socketUrl());
    this.warm = ws;
    ws.onclose = () => { if (this.warm === ws) this.warm = null; };
    ws.onerror = () => {};
  }

  async connect() {
    if (this.stopped) return;
    this.onstate(this.attempt || this.session ? "reconnecting" : "connecting");
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
    const openTimer = setTimeout(() => { if (this.ws === ws && ws.readyState !== WebSocket.OPEN) this.abandon(ws); },
                                 ATTEMPT_TIMEOUT_MS);
    const hello = () => {
      clearTimeout(openTimer);
      this.lastHeard = performance.now();
      ws.send(JSON.stringify({ type: "hello", version: PROTOCOL_VERSION, token, device: this.device,
                               audio: this.media.audio, video: this.media.video, session: this.session,
                               red: redSupported() }));
    };
    if (ws.readyState === WebSocket.OPEN) hello(); else ws.onopen = hello;
    ws.onmessage = (event) => {
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
    };
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
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
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
