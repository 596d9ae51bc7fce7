// Signalling: one WebSocket to /ws/meetings/{id}, reconnecting with backoff.
//
// Every (re)connection fetches a fresh short-lived join token from the page's server, then
// says hello. Incoming frames are handed to `onmessage` strictly in order (one promise
// chain), because SDP and candidates must be applied in the order they were sent.
// Close codes 4401/4403/4404 and "replaced" are final; 4409 (meeting not open) retries
// slowly; anything else retries with exponential backoff.

export const PROTOCOL_VERSION = 1;
const FINAL_CODES = new Set([4000, 4401, 4403, 4404]);

export class Signalling {
  constructor({ meetingId, device, audio, video }) {
    this.meetingId = meetingId;
    this.device = device;
    this.media = { audio, video };
    this.ws = null;
    this.chain = Promise.resolve();
    this.attempt = 0;
    this.stopped = false;
    this.lastError = null;
    this.onmessage = async () => {};
    this.onstate = () => {};      // ("connecting" | "open" | "reconnecting" | "waiting" | "closed", detail)
  }

  async tokenFor() {
    const r = await fetch(`/meetings/${this.meetingId}/room/token?device=${this.device}`,
                          { credentials: "same-origin", cache: "no-store" });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw Object.assign(new Error(body.message || "Không lấy được mã tham gia."), { final: true });
    return body.token;
  }

  async connect() {
    if (this.stopped) return;
    this.onstate(this.attempt ? "reconnecting" : "connecting");
    let token;
    try {
      token = await this.tokenFor();
    } catch (e) {
      if (e.final) { this.stop(); this.onstate("closed", e.message); return; }
      return this.retry();
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/meetings/${this.meetingId}`);
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "hello", version: PROTOCOL_VERSION, token, device: this.device,
                               audio: this.media.audio, video: this.media.video }));
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;  // a late frame from a socket we replaced
      let msg;
      try { msg = JSON.parse(event.data); } catch { return; }
      if (msg.type === "welcome") { this.attempt = 0; this.onstate("open"); }
      if (msg.type === "error") this.lastError = msg;
      this.chain = this.chain.then(() => this.onmessage(msg)).catch((e) => console.error(msg.type, e));
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this.ws = null;
      if (this.stopped) return;
      const reason = this.lastError && this.lastError.message;
      if (FINAL_CODES.has(event.code)) { this.stop(); this.onstate("closed", reason, event.code); return; }
      if (event.code === 4409) { this.onstate("waiting", reason); this.retry(10000); return; }
      this.retry();
    };
  }

  retry(delay) {
    if (this.stopped) return;
    this.attempt += 1;
    const backoff = delay || Math.min(15000, 500 * 2 ** Math.min(this.attempt, 5)) * (0.75 + Math.random() / 2);
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
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(1000, "leave"); }
  }
}
