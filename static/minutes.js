// The minutes editor: renders the draft, autosaves every change, and never loses typing.
//
// Every change is kept in localStorage at once; the server gets it after a short pause. If
// the connection drops, the status says so and saving resumes by itself; on the next load a
// copy the server never received is restored. A save based on an older revision than the
// server's is refused (someone else edited): the editor then asks to reload, and the reloaded
// page offers the copy typed here beside the server's text.

const boot = JSON.parse(document.getElementById("minutes-data").textContent);
const form = document.getElementById("minutes-form");
const itemsBox = document.getElementById("items");
const status = document.getElementById("autosave");
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const storeKey = `chibo-minutes-${boot.meeting}`;
let revision = boot.revision;
let timer = null;
let inFlight = false;
let dirty = false;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function field(label, name, value, { multiline = false, list } = {}) {
  const input = multiline ? el("textarea", { rows: "3", "data-name": name }) : el("input", { "data-name": name, maxlength: "500" });
  if (list) input.setAttribute("list", list);
  input.value = value || "";
  return el("label", {}, label, input);
}

function opinionRow(op = {}) {
  const row = el("div", { class: "opinion" },
    field("Người phát biểu", "speaker", op.speaker, { list: "people" }),
    field("Ý kiến", "text", op.text, { multiline: true }),
    el("button", { type: "button", class: "small linkish", text: "Xóa ý kiến", onclick: () => { row.remove(); changed(); } }));
  return row;
}

function itemBox(item = {}) {
  const opinions = el("div", { class: "opinions" });
  for (const op of item.opinions || []) opinions.append(opinionRow(op));
  const box = el("div", { class: "minutes-item" },
    field("Nội dung", "title", item.title),
    field("Tài liệu đã truyền đạt", "documents", item.documents),
    field("Tóm tắt", "summary", item.summary, { multiline: true }),
    el("strong", { text: "Ý kiến phát biểu" }), opinions,
    el("button", { type: "button", class: "small", text: "+ Thêm ý kiến", onclick: () => { opinions.append(opinionRow()); changed(); } }),
    field("Kết luận của chủ trì", "conclusion", item.conclusion, { multiline: true }),
    el("button", { type: "button", class: "small danger", text: "Xóa nội dung này", onclick: () => { if (confirm("Xóa nội dung này khỏi biên bản?")) { box.remove(); changed(); } } }));
  return box;
}

function collect() {
  const data = {};
  for (const name of ["chair_member_id", "taker_member_id", "place", "guests", "resolution", "other"]) data[name] = form.elements[name].value;
  data.items = [...itemsBox.querySelectorAll(".minutes-item")].map((box) => {
    const get = (name) => box.querySelector(`:scope > label > [data-name="${name}"]`).value;
    return {
      title: get("title"), documents: get("documents"), summary: get("summary"), conclusion: get("conclusion"),
      opinions: [...box.querySelectorAll(".opinion")].map((row) => ({
        speaker: row.querySelector('[data-name="speaker"]').value, text: row.querySelector('[data-name="text"]').value })),
    };
  });
  return data;
}

function fill(data) {
  for (const name of ["chair_member_id", "taker_member_id", "place", "guests", "resolution", "other"]) form.elements[name].value = data[name] == null ? "" : String(data[name]);
  itemsBox.replaceChildren(...(data.items || []).map(itemBox));
}

function show(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function changed() {
  dirty = true;
  localStorage.setItem(storeKey, JSON.stringify({ revision, data: collect(), at: Date.now() }));
  show("pending", "Đang chờ lưu…");
  clearTimeout(timer);
  timer = setTimeout(save, 1200);
}

async function save() {
  if (inFlight) { timer = setTimeout(save, 500); return; }
  if (!dirty) return;
  inFlight = true;
  dirty = false;
  show("saving", "Đang lưu…");
  try {
    const r = await fetch(`/meetings/${boot.meeting}/minutes/draft`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ revision, data: collect() }),
    });
    const body = await r.json().catch(() => ({}));
    if (r.ok) {
      revision = body.revision;
      localStorage.removeItem(storeKey);
      const time = new Date(body.saved_at).toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZone: "Asia/Ho_Chi_Minh" });
      show("saved", `Đã lưu lúc ${time}.`);
    } else if (r.status === 409) {
      show("conflict", body.message || "Biên bản vừa được sửa ở nơi khác. Hãy tải lại trang.");
    } else {
      dirty = true;
      show("error", body.message || "Không lưu được. Bản nháp vẫn được giữ trên máy này.");
    }
  } catch {
    dirty = true;
    show("offline", "Mất kết nối: chưa lưu lên máy chủ, bản nháp được giữ trên máy này và sẽ tự lưu lại.");
    timer = setTimeout(save, 5000);
  } finally {
    inFlight = false;
  }
}

// A copy typed on an older revision (someone else saved meanwhile): never dropped silently.
// The server's text is shown; the copy is offered to be taken over or discarded.
function takeOver(current, copy) {
  // The copy's filled fields over the server's: what the other editor saved stays where this copy is empty.
  const out = { ...current };
  for (const [k, v] of Object.entries(copy)) if (k !== "items" && v != null && String(v).trim()) out[k] = v;
  if ((copy.items || []).length) out.items = copy.items;
  return out;
}

function offerStale(copy) {
  const box = el("div", { class: "flash flash-warning", id: "stale-copy", role: "alert" },
    el("p", { text: "Máy này còn một bản nháp chưa lưu, soạn trước khi biên bản được sửa ở nơi khác:" }));
  const texts = [copy.data.place, copy.data.guests, copy.data.resolution, copy.data.other,
    ...(copy.data.items || []).flatMap((i) => [i.title, i.summary, i.conclusion, ...(i.opinions || []).map((o) => o.text)])];
  for (const t of texts.filter((t) => t && String(t).trim())) box.append(el("blockquote", { text: String(t) }));
  box.append(
    el("button", { type: "button", class: "small", text: "Dùng bản nháp này", onclick: () => { box.remove(); fill(takeOver(collect(), copy.data)); changed(); } }),
    " ",
    el("button", { type: "button", class: "small linkish", text: "Bỏ bản nháp này", onclick: () => { box.remove(); localStorage.removeItem(storeKey); } }));
  form.before(box);
}

const stored = JSON.parse(localStorage.getItem(storeKey) || "null");
if (stored && stored.revision === boot.revision) {
  fill(stored.data);
  dirty = true;
  show("pending", "Đã khôi phục bản nháp chưa lưu trên máy này; đang lưu…");
  setTimeout(save, 300);
} else {
  fill(boot.data);
  if (stored) offerStale(stored);
}
document.getElementById("add-item").addEventListener("click", () => { itemsBox.append(itemBox()); changed(); });
form.addEventListener("input", changed);
form.addEventListener("submit", (event) => event.preventDefault());  // autosaved; Enter must not post
window.addEventListener("online", () => { if (dirty) save(); });
window.chiboMinutes = { save, collect, get revision() { return revision; } };
