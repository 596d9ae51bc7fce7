// The local camera and microphone, kept small for weak mobile networks.
//
// `stream` is the MediaStream shown in the preview and offered to peers; audioTrack and
// videoTrack may be null (audio-only, camera off, or no device). Speaking is detected from
// the microphone's level with some hysteresis, so the server hears about changes, not noise.

const VIDEO = { width: { ideal: 320 }, height: { ideal: 240 }, frameRate: { ideal: 15, max: 20 } };

export class LocalMedia {
  constructor({ hall = false } = {}) {
    this.hall = hall;
    this.stream = new MediaStream();
    this.audioTrack = null;
    this.videoTrack = null;
    this.micOn = true;
    this.cameraOn = true;
    this.onspeaking = () => {};
  }

  audioConstraints() {
    // The hall device sits in a room with a speakerphone: echo cancellation matters most.
    return { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  }

  async start({ audio = true, video = true } = {}) {
    const errors = [];
    if (audio && video) {
      // One request for both: one start-up instead of two in a row. If either device is
      // missing or refused, fall back to asking for each on its own.
      try {
        const s = await navigator.mediaDevices.getUserMedia({ audio: this.audioConstraints(), video: VIDEO });
        this.audioTrack = s.getAudioTracks()[0];
        this.videoTrack = s.getVideoTracks()[0];
        this.videoTrack.contentHint = "motion";
        this.stream.addTrack(this.audioTrack);
        this.stream.addTrack(this.videoTrack);
        this.cameraOn = true;
        this.watchLevel();
        return errors;
      } catch (e) { /* ask for each below */ }
    }
    if (audio) {
      try {
        const s = await navigator.mediaDevices.getUserMedia({ audio: this.audioConstraints() });
        this.audioTrack = s.getAudioTracks()[0];
        this.stream.addTrack(this.audioTrack);
        this.watchLevel();
      } catch (e) { errors.push("micro"); this.micOn = false; }
    } else {
      this.micOn = false;
    }
    if (video) {
      await this.startCamera().catch(() => errors.push("camera"));
    } else {
      this.cameraOn = false;
    }
    return errors;
  }

  async startCamera() {
    const s = await navigator.mediaDevices.getUserMedia({ video: VIDEO });
    this.videoTrack = s.getVideoTracks()[0];
    this.videoTrack.contentHint = "motion";
    this.stream.addTrack(this.videoTrack);
    this.cameraOn = true;
  }

  stopCamera() {
    if (this.videoTrack) {
      this.videoTrack.stop();
      this.stream.removeTrack(this.videoTrack);
      this.videoTrack = null;
    }
    this.cameraOn = false;
  }

  setMic(on) {
    this.micOn = on && !!this.audioTrack;
    if (this.audioTrack) this.audioTrack.enabled = this.micOn;
    if (!this.micOn) this.setSpeaking(false);
  }

  watchLevel() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx || !this.audioTrack) return;
    try {
      this.ctx = new Ctx();
      const source = this.ctx.createMediaStreamSource(new MediaStream([this.audioTrack]));
      const analyser = this.ctx.createAnalyser();
      analyser.fftSize = 512;
      source.connect(analyser);
      const data = new Uint8Array(analyser.fftSize);
      let loud = 0;
      let quiet = 0;
      this.levelTimer = setInterval(() => {
        analyser.getByteTimeDomainData(data);
        let sum = 0;
        for (const v of data) sum += (v - 128) * (v - 128);
        const rms = Math.sqrt(sum / data.length);
        if (this.micOn && rms > 6) { loud += 1; quiet = 0; } else { quiet += 1; loud = 0; }
        if (loud >= 2) this.setSpeaking(true);
        if (quiet >= 8) this.setSpeaking(false);
      }, 100);
    } catch (e) { console.warn("level meter", e); }
  }

  setSpeaking(value) {
    if (this.speaking === value) return;
    this.speaking = value;
    this.onspeaking(value);
  }

  stop() {
    clearInterval(this.levelTimer);
    for (const t of this.stream.getTracks()) t.stop();
    if (this.ctx) this.ctx.close();
  }
}
