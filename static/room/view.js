// Everything the room shows. User text only ever goes through textContent.
// Where the video tiles go (speaker view or grid) is decided by layout.js.

import { StageLayout } from "./layout.js";

const $ = (sel, el = document) => el.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

const QUALITY = { good: "Tốt", fair: "Trung bình", poor: "Yếu" };
const ROLE = { chair: "Chủ trì", hall: "Hội trường", member: "" };

function initials(name) {
  const parts = (name || "?").trim().split(/\s+/);
  return (parts.length > 1 ? parts[parts.length - 2][0] + parts[parts.length - 1][0] : parts[0][0] || "?").toUpperCase();
}

export class RoomView {
  constructor(room, cfg) {
    this.room = room;
    this.cfg = cfg;
    this.tiles = new Map();
    this.chatIds = new Set();
    this.waitingForStart = false;
    this.layout = new StageLayout({ speaker: $("#speaker"), strip: $("#strip"), selfView: $("#self-view"),
                                    stage: $("#stage") });
    this.layout.onchange = () => this.arrange();
  }

  // The choice before joining; `auto` ({ video }) joins again by itself (rejoin.js).
  prejoin(start, auto) {
    const go = (video) => {
      $("#prejoin").hidden = true;
      start({ video });
    };
    const withVideo = $("#join-video");
    const audioOnly = $("#join-audio");
    if (withVideo) withVideo.addEventListener("click", () => go(true));
    if (audioOnly) audioOnly.addEventListener("click", () => go(false));
    // Enabled only now (the page renders them disabled): a tap before this would be lost.
    for (const button of [withVideo, audioOnly]) if (button) button.disabled = false;
    if (auto && withVideo) {
      $("#rejoining").hidden = false;
      go(auto.video);
    }
  }

  showStage() {
    $("#stage").hidden = false;
    document.body.classList.add("in-room");
    const floorEnd = $("#floor-end");
    if (floorEnd) floorEnd.addEventListener("click", () => this.room.send({ type: "give_floor", participant: null }));
    $("#vote-dismiss").addEventListener("click", () => { this.room.voteDismissed = this.room.vote && this.room.vote.id; this.renderVote(); });
    $("#btn-layout").addEventListener("click", () => this.layout.toggle());
    $("#panel").addEventListener("keydown", (event) => { if (event.key === "Escape") this.closePanel(); });
    const tabs = [...document.querySelectorAll("[role=tab][data-tab]")];
    tabs.forEach((tab, i) => tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1, Home: -i, End: tabs.length - 1 - i }[event.key];
      if (step === undefined) return;
      event.preventDefault();
      const next = tabs[(i + step + tabs.length) % tabs.length];
      this.openPanel(next.dataset.tab, { focusTab: true });
    }));
    $("#btn-mic").addEventListener("click", () => this.room.setMic(!this.room.media.micOn));
    $("#btn-cam").addEventListener("click", () => this.room.setCamera(!this.room.media.videoTrack));
    $("#btn-audio-only").addEventListener("click", () => this.room.setAudioOnly(!this.room.audioOnly).then(() => this.controls()));
    $("#btn-hand").addEventListener("click", () => {
      const me = this.room.participants.get(this.room.me);
      this.room.raiseHand(!(me && me.hand));
    });
    $("#btn-chat").addEventListener("click", () => this.openPanel("chat"));
    $("#btn-people").addEventListener("click", () => this.openPanel("people"));
    $("#btn-leave").addEventListener("click", () => this.room.leave());
    $("#btn-saver").addEventListener("click", () => this.room.setDataSaver(!this.room.dataSaver));
    $("#panel-close").addEventListener("click", () => this.closePanel());
    for (const tab of document.querySelectorAll("[data-tab]")) {
      tab.addEventListener("click", () => this.openPanel(tab.dataset.tab));
    }
    for (const button of document.querySelectorAll("#vote-buttons [data-choice]")) {
      button.addEventListener("click", () => this.room.cast(button.dataset.choice));
    }
    const voteClose = $("#vote-close");
    if (voteClose) voteClose.addEventListener("click", () => {
      if (this.room.vote && confirm("Kết thúc biểu quyết và chốt kết quả?")) this.room.send({ type: "close_vote", motion_id: this.room.vote.id });
    });
    const voteForm = $("#vote-form");
    if (voteForm) voteForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const title = voteForm.elements.title.value.trim();
      if (!title) return;
      this.room.send({ type: "open_vote", title, kind: voteForm.elements.kind.value });
      voteForm.reset();
    });
    $("#chat-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = $("#chat-input");
      const text = input.value.trim();
      if (!text) return;
      if (this.room.send({ type: "chat", text })) input.value = "";
      else this.toast("Chưa kết nối; tin nhắn chưa được gửi.", "error");
    });
    this.controls();
  }

  // The chat, people, hands and counts as a sheet: below the speaker on a phone, beside the
  // videos on a wide screen; the speaker stays in sight either way.
  openPanel(tab, { focusTab = false } = {}) {
    if ($("#panel").hidden) this.opener = document.activeElement;
    $("#panel").hidden = false;
    $("#stage").dataset.panel = "open";
    for (const section of document.querySelectorAll("#panel [data-section]")) section.hidden = section.dataset.section !== tab;
    for (const t of document.querySelectorAll("[data-tab]")) {
      t.setAttribute("aria-selected", t.dataset.tab === tab ? "true" : "false");
      t.tabIndex = t.dataset.tab === tab ? 0 : -1;
    }
    $("#btn-chat").setAttribute("aria-expanded", tab === "chat" ? "true" : "false");
    $("#btn-people").setAttribute("aria-expanded", tab === "people" ? "true" : "false");
    if (focusTab) $(`[data-tab="${tab}"]`).focus();
    else if (tab === "chat") $("#chat-input").focus();
    else $(`[data-tab="${tab}"]`).focus();
    if (tab === "chat") { this.room.unread = 0; this.badge(); }
  }

  closePanel() {
    $("#panel").hidden = true;
    $("#stage").dataset.panel = "closed";
    $("#btn-chat").setAttribute("aria-expanded", "false");
    $("#btn-people").setAttribute("aria-expanded", "false");
    const back = this.opener && this.opener.isConnected ? this.opener : $("#btn-chat");
    back.focus();
  }

  controls() {
    const media = this.room.media;
    if (!media) return;
    const set = (id, on, label) => { const b = $(id); b.setAttribute("aria-pressed", on ? "true" : "false"); b.querySelector("span").textContent = label; };
    set("#btn-mic", media.micOn, media.micOn ? "Tắt mic" : "Bật mic");
    set("#btn-cam", !!media.videoTrack, media.videoTrack ? "Tắt camera" : "Bật camera");
    set("#btn-audio-only", this.room.audioOnly, this.room.audioOnly ? "Có hình" : "Chỉ âm thanh");
    const saver = $("#btn-saver");
    saver.setAttribute("aria-pressed", this.room.dataSaver ? "true" : "false");
    saver.textContent = this.room.dataSaver ? "Tắt tiết kiệm dữ liệu" : "Tiết kiệm dữ liệu";
    $("#btn-cam").disabled = this.room.audioOnly;
    const me = this.room.participants.get(this.room.me);
    set("#btn-hand", !!(me && me.hand), me && me.hand ? "Hạ tay" : "Giơ tay");
  }

  setLocal(media) {
    const id = "self";
    const stream = new MediaStream(media.videoTrack ? [media.videoTrack] : []);
    this.tile(id, stream, { self: true });
    this.controls();
  }

  tile(id, stream, { self = false } = {}) {
    let tile = this.tiles.get(id);
    if (!tile) {
      const video = el("video", { autoplay: true, playsinline: true, "aria-hidden": "true" });
      if (self) video.muted = true;
      tile = el("div", { class: "tile" + (self ? " tile-self" : ""), "data-id": id },
        el("div", { class: "avatar", "aria-hidden": "true" }, el("span", { class: "initials" }), el("span", { class: "ring" })), video,
        el("div", { class: "tile-bar" }, el("span", { class: "tile-name" }), el("span", { class: "tile-flags" })));
      if (!self) {
        // The whole tile is the button that shows this person large (or lets go of them).
        tile.append(el("button", { type: "button", class: "tile-pin", "aria-pressed": "false",
                                   onclick: () => this.layout.pin(id) }));
      }
      this.tiles.set(id, tile);
      $("#strip").append(tile);
    }
    const video = $("video", tile);
    if (video.srcObject !== stream) video.srcObject = stream;
    video.play().catch(() => {});
    this.decorate(id);
    this.arrange();
  }

  // Puts the tiles where the layout says; the large one gets every remote video's full size.
  arrange() {
    this.mainId = this.layout.place(this.tiles, this.room.floor);
    const grid = this.layout.grid;
    const toggle = $("#btn-layout");
    toggle.textContent = grid ? "Xem người nói lớn" : "Xem dạng lưới";
    toggle.setAttribute("aria-pressed", grid ? "true" : "false");
  }

  decorate(id) {
    const tile = this.tiles.get(id);
    if (!tile) return;
    const pid = id === "self" ? this.room.me : id;
    const p = this.room.participants.get(pid);
    const name = id === "self" ? "Bạn" : (p ? p.name : "…");
    $(".tile-name", tile).textContent = name + (p && ROLE[p.role] ? ` · ${ROLE[p.role]}` : "");
    $(".initials", tile).textContent = initials(p ? p.name : name);
    const floor = !!(p && this.room.floor === p.id);
    const speaking = !!(p && p.speaking && p.audio);
    if (speaking) this.layout.heard(id);
    const flags = [];
    // Said in words too: colour is never the only sign (WCAG 1.4.1).
    if (floor) flags.push("đang phát biểu");
    else if (speaking) flags.push("đang nói");
    if (p && !p.audio) flags.push("mic tắt");
    if (p && p.hand) flags.push("giơ tay");
    if (p && p.status === "reconnecting") flags.push("đang kết nối lại…");
    if (p && p.quality === "poor") flags.push("mạng yếu");
    const paused = id !== "self" && this.room.videoPaused(id);
    if (paused && p && p.video && !p.audio_only) flags.push(this.room.dataSaver ? "đã ẩn hình để tiết kiệm dữ liệu" : "tạm dừng hình do mạng yếu");
    if (this.room.indicators) flags.push(...this.room.indicators.flags(pid));   // health.js
    $(".tile-flags", tile).textContent = flags.join(" · ");
    const video = $("video", tile);
    const hasVideo = video.srcObject && video.srcObject.getVideoTracks().length > 0 && !(p && (p.audio_only || !p.video)) && !paused;
    tile.classList.toggle("no-video", !hasVideo);
    tile.classList.toggle("speaking", speaking);
    tile.classList.toggle("reconnecting", !!(p && p.status === "reconnecting"));
    tile.classList.toggle("has-floor", floor);
    const pin = $(".tile-pin", tile);
    if (pin) {
      const pinned = this.layout.pinned === id;
      pin.setAttribute("aria-pressed", pinned ? "true" : "false");
      pin.setAttribute("aria-label", `${pinned ? "Thôi ghim" : "Xem lớn"}: ${p ? p.name : "người dự"}${flags.length ? ` (${flags.join(", ")})` : ""}`);
    }
  }

  removeTile(id) {
    const tile = this.tiles.get(id);
    if (tile) { tile.remove(); this.tiles.delete(id); }
    if (this.layout.pinned === id) this.layout.pinned = null;
    this.arrange();
  }

  linkState(id, state) {
    const tile = this.tiles.get(id);
    if (tile) tile.dataset.link = state;
  }

  welcome(msg) {
    for (const entry of msg.chat) this.addChat(entry, { quiet: true });
    this.renderPeople();
    this.renderFloor();
    this.mode(msg.topology);
    $("#waiting").hidden = true;
  }

  mode(topology) {
    const box = $("#mode");
    box.dataset.topology = topology;
    $("#mode-text").textContent = topology === "relay"
      ? "Chế độ: qua máy chủ chuyển tiếp (mỗi người chỉ gửi hình và tiếng một lần)"
      : "Chế độ: kết nối trực tiếp giữa các thiết bị";
  }

  renderPeople() {
    for (const id of this.tiles.keys()) this.decorate(id);
    this.arrange();
    this.controls();
    this.renderLists();
    $("#hands-empty").hidden = this.room.hands.length > 0;
    $("#hands-count").textContent = this.room.hands.length ? String(this.room.hands.length) : "";
  }

  // The people and hands lists are rebuilt only when what they show changes: a speaking
  // indicator flickering elsewhere must not pull a button away from under the chair's finger.
  renderLists() {
    const chair = this.cfg.chair;
    const people = [...this.room.participants.values()].map((p) => [p.id, p.name + (p.id === this.room.me ? " (bạn)" : ""),
      [ROLE[p.role], p.audio ? "" : "mic tắt", p.voter ? "" : (p.role === "member" ? "không biểu quyết" : ""), p.status === "reconnecting" ? "đang kết nối lại" : ""].filter(Boolean).join(" · "), p.name]);
    const hands = this.room.hands.map((id) => { const p = this.room.participants.get(id); return [id, p ? p.name : id]; });
    const shown = JSON.stringify([people, hands]);
    if (shown === this.listsShown) return;
    this.listsShown = shown;
    $("#people-list").replaceChildren(...people.map(([id, label, meta, name]) => {
      const row = el("li", { class: "person", "data-id": id },
        el("span", { class: "person-name", text: label }), el("span", { class: "person-meta", text: meta }));
      if (chair && id !== this.room.me) {
        row.append(el("span", { class: "person-actions" },
          el("button", { type: "button", class: "small", text: "Đề nghị tắt mic", "aria-label": `Đề nghị ${name} tắt mic`, onclick: () => this.room.send({ type: "ask_mute", participant: id }) }),
          el("button", { type: "button", class: "small", text: "Tắt mic", "aria-label": `Tắt mic của ${name}`, onclick: () => this.room.send({ type: "mute", participant: id }) }),
          el("button", { type: "button", class: "small danger", text: "Mời ra", "aria-label": `Mời ${name} ra khỏi phòng`, onclick: () => {
            const reason = prompt(`Mời ${name} ra khỏi phòng họp. Lý do:`);
            if (reason !== null) this.room.send({ type: "remove", participant: id, reason });
          } })));
      }
      return row;
    }));
    $("#people-count").textContent = String(people.length);
    $("#hands-list").replaceChildren(...hands.map(([id, who], index) => {
      const row = el("li", { class: "hand-row", "data-id": id }, el("span", { text: `${index + 1}. ${who}` }));
      if (chair) {
        row.append(el("button", { type: "button", class: "small primary", text: "Cho phát biểu", "aria-label": `Cho ${who} phát biểu`, onclick: () => this.room.send({ type: "give_floor", participant: id }) }),
                   el("button", { type: "button", class: "small", text: "Hạ tay", "aria-label": `Hạ tay của ${who}`, onclick: () => this.room.send({ type: "lower_hand", participant: id }) }));
      }
      return row;
    }));
  }

  renderFloor() {
    const banner = $("#floor");
    const p = this.room.floor && this.room.participants.get(this.room.floor);
    banner.hidden = !p;
    $("#floor-name").textContent = p ? p.name : "";
    const end = $("#floor-end");
    if (end) end.hidden = !(p && this.cfg.chair);
    for (const id of this.tiles.keys()) this.decorate(id);
    this.arrange();
  }

  // An open vote is a card above the videos; a closed one shrinks to its result line, which
  // the user can close (and which is not shown at all to someone joining after it closed).
  renderVote() {
    const box = $("#vote");
    const v = this.room.vote;
    const ended = v && (v.status === "closed" || v.status === "void");
    if (!v || (ended && this.room.voteDismissed === v.id)) { box.hidden = true; return; }
    box.hidden = false;
    box.classList.toggle("closed", ended);
    $("#vote-dismiss").hidden = !ended;
    $("#vote-title").textContent = v.title;
    $("#vote-kind").textContent = v.kind === "secret" ? "· bỏ phiếu kín" : "· biểu quyết công khai";
    const me = this.room.participants.get(this.room.me);
    const canVote = v.status === "open" && me && me.voter && !this.room.voted;
    $("#vote-buttons").hidden = !canVote;
    const closeButton = $("#vote-close");
    if (closeButton) closeButton.hidden = v.status !== "open";
    let text;
    if (v.status === "closed") {
      const r = v.result;
      text = `Đã kết thúc. Kết quả: tán thành ${r.agree}/${r.denominator}, không tán thành ${r.disagree}, không biểu quyết ${r.abstain} — ${r.passed ? "THÔNG QUA" : "KHÔNG THÔNG QUA"} (cần ≥ ${r.votes_needed}).`;
    } else if (v.status === "void") {
      text = "Cuộc bỏ phiếu này đã bị hủy do sự cố máy chủ.";
    } else if (this.room.voted) {
      text = `Bạn đã biểu quyết. Đã có ${v.voted} người biểu quyết trực tuyến.`;
    } else if (me && !me.voter) {
      text = "Bạn theo dõi biểu quyết nhưng không có quyền biểu quyết (đảng viên dự bị, sinh hoạt tạm thời hoặc thiết bị hội trường).";
    } else {
      text = `Đang biểu quyết. Đã có ${v.voted} người biểu quyết trực tuyến.`;
    }
    $("#vote-status").textContent = text;
  }

  renderCounts(c) {
    const rows = [["Tổng số", c.total], ["Có mặt", c.present], ["Trực tiếp / trực tuyến", `${c.present_in_person}/${c.present_online}`],
                  ["Vắng có lý do", c.absent_excused.length], ["Vắng không lý do", c.absent_unexcused.length],
                  ["Miễn SH / chuyển SHT", `${c.exempt}/${c.transferred_out}`], ["Mẫu số D", c.denominator],
                  ["Cần tán thành", `≥ ${c.votes_needed}`], ["Có quyền biểu quyết, có mặt", c.voters_present.length]];
    $("#counts-list").replaceChildren(...rows.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: String(v) }))));
    const warn = $("#counts-warning");
    warn.hidden = !c.too_few_voters;
    warn.textContent = c.too_few_voters ? `Số người có quyền biểu quyết có mặt (${c.voters_present.length}) chưa quá một nửa D = ${c.denominator}: chưa thể thông qua nghị quyết.` : "";
  }

  addChat(entry, { quiet = false } = {}) {
    if (this.chatIds.has(entry.id)) return;
    this.chatIds.add(entry.id);
    const time = new Date(entry.at).toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit", timeZone: "Asia/Ho_Chi_Minh" });
    const item = el("li", { class: "chat-item" + (entry.sender === this.room.me ? " mine" : ""), "data-id": entry.id },
      el("div", { class: "chat-meta" }, el("strong", { text: entry.name }), el("span", { text: ` · ${time}` })),
      el("div", { class: "chat-text", text: entry.text }));
    if (this.cfg.chair) {
      item.append(el("button", { type: "button", class: "linkish small chat-delete", text: "Xóa", "aria-label": `Xóa tin nhắn của ${entry.name}`,
        onclick: () => { if (confirm("Xóa tin nhắn này? Thao tác được ghi vào nhật ký.")) this.room.send({ type: "delete_chat", message_id: entry.id }); } }));
    }
    const list = $("#chat-list");
    list.append(item);
    list.scrollTop = list.scrollHeight;
    if (!quiet && ($("#panel").hidden || $("#section-chat").hidden)) { this.room.unread += 1; this.badge(); }
  }

  removeChat(id) {
    const item = document.querySelector(`#chat-list [data-id="${Number(id)}"]`);
    if (item) item.remove();
  }

  badge() {
    const badge = $("#chat-badge");
    badge.textContent = this.room.unread ? String(this.room.unread) : "";
    $("#btn-chat").setAttribute("aria-label", this.room.unread ? `Trò chuyện, ${this.room.unread} tin nhắn mới` : "Trò chuyện");
  }

  askToMute() {
    const bar = $("#mute-request");
    bar.hidden = false;
    $("#mute-accept").focus();
    $("#mute-accept").onclick = () => { this.room.setMic(false); bar.hidden = true; };
    $("#mute-dismiss").onclick = () => { bar.hidden = true; };
  }

  waiting(message) {
    $("#waiting").hidden = false;
    $("#waiting-text").textContent = message || "Cuộc họp chưa bắt đầu. Trang sẽ tự vào phòng khi bí thư bắt đầu cuộc họp.";
  }

  renderLobby(waiting) {
    const box = $("#lobby");
    if (!box) return;
    box.hidden = waiting.length === 0;
    const list = $("#lobby-list");
    list.replaceChildren(...waiting.map((w) => el("li", { class: "lobby-row" },
      el("span", { text: w.name }),
      el("button", { type: "button", class: "small primary", text: "Cho vào", onclick: () => this.room.send({ type: "admit", participant: w.id, accept: true }) }),
      el("button", { type: "button", class: "small", text: "Từ chối", onclick: () => this.room.send({ type: "admit", participant: w.id, accept: false }) }))));
  }

  // Waiting for the meeting to start is a normal state, not a failure: once the server said
  // "not open yet" (4409), the retries that follow read as waiting until the room lets us in.
  connection(state, detail, kind) {
    if (state === "waiting") this.waitingForStart = true;
    if (state === "open") { this.waitingForStart = false; $("#waiting").hidden = true; }
    const shown = this.waitingForStart && (state === "connecting" || state === "reconnecting") ? "waiting" : state;
    const box = $("#conn");
    const labels = { connecting: "Đang kết nối…", open: "Đã kết nối", reconnecting: "Đang kết nối lại…",
                     waiting: "Chờ bí thư bắt đầu cuộc họp", closed: "Đã ngắt kết nối" };
    box.dataset.state = shown;
    $("#conn-text").textContent = labels[shown] || shown;
    if (state === "waiting") this.waiting(detail);
    if (state === "closed" && detail) this.ended(detail, kind || "refused");
  }

  quality(level) {
    $("#quality").textContent = `Mạng: ${QUALITY[level]}`;
    $("#quality").dataset.level = level;
  }

  serverRtt(ms) {
    $("#quality").title = `Độ trễ tới máy chủ: ${Math.round(ms)} ms`;
  }

  toast(message, level = "info") {
    const box = el("div", { class: `toast toast-${level}`, role: "status", text: message });
    $("#toasts").append(box);
    setTimeout(() => box.remove(), 6000);
  }

  // Why the user is out of the room decides the way on: "left" and "replaced" may come back,
  // "removed" and "refused" may not, "closed" leads to the roster and the minutes.
  ended(message, kind = "left") {
    const titles = { left: "Đã rời phòng họp", replaced: "Đã rời phòng họp", closed: "Cuộc họp đã kết thúc",
                     removed: "Bạn đã được mời ra khỏi phòng họp", refused: "Không thể vào phòng họp" };
    document.body.classList.remove("in-room");
    $("#stage").hidden = true;
    $("#prejoin").hidden = true;
    $("#waiting").hidden = true;
    $("#ended").hidden = false;
    $("#ended-title").textContent = titles[kind] || titles.left;
    $("#ended-text").textContent = message;
    for (const link of document.querySelectorAll("#ended [data-ended]")) link.hidden = !link.dataset.ended.split(" ").includes(kind);
    $("#ended-title").focus();
  }
}
