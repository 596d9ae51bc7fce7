// Where each video tile goes: the speaker view (phones) or a grid (wide screens).
//
// Speaker view: one participant large — the floor holder, else the one the user pinned, else
// whoever spoke last, else the first other participant — the others in a strip below, and
// the user's own picture small in a corner. Grid: everybody the same size, the floor holder
// and the speaker marked. Tiles are moved between the containers, never re-created, so a
// video keeps playing.

const WIDE = "(min-width: 900px)";

export class StageLayout {
  constructor({ speaker, strip, selfView, stage }) {
    this.speaker = speaker;
    this.strip = strip;
    this.selfView = selfView;
    this.stage = stage;
    this.pinned = null;
    this.lastSpeaker = null;
    this.choice = null;                      // "grid" | "speaker" chosen by the user, or null: by width
    this.wide = window.matchMedia(WIDE);
    this.onchange = () => {};
    this.wide.addEventListener("change", () => this.onchange());
  }

  get grid() {
    return this.choice ? this.choice === "grid" : this.wide.matches;
  }

  toggle() {
    this.choice = this.grid ? "speaker" : "grid";
    this.onchange();
  }

  pin(id) {
    this.pinned = this.pinned === id ? null : id;
    this.onchange();
  }

  heard(id) {
    if (id !== "self") this.lastSpeaker = id;
  }

  // The participant shown large: floor holder, pinned, last speaker, first other.
  mainId(tiles, floor) {
    for (const id of [floor, this.pinned, this.lastSpeaker]) {
      if (id && id !== "self" && tiles.has(id)) return id;
    }
    for (const id of tiles.keys()) if (id !== "self") return id;
    return null;
  }

  place(tiles, floor) {
    const grid = this.grid;
    const main = grid ? null : this.mainId(tiles, floor);
    this.stage.dataset.layout = grid ? "grid" : "speaker";
    this.stage.dataset.alone = main ? "0" : "1";
    for (const [id, tile] of tiles) {
      let target = this.strip;
      if (!grid && id === main) target = this.speaker;
      else if (!grid && id === "self") target = main ? this.selfView : this.speaker;
      if (tile.parentElement !== target) {
        if (id === "self" && target === this.strip) target.prepend(tile); else target.append(tile);
      }
      tile.classList.toggle("is-main", target === this.speaker);
      tile.classList.toggle("pinned", id === this.pinned);
    }
    return main;
  }
}
