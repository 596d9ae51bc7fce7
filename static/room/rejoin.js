// Coming back after a reload or a closed tab: the page remembers (in this browser only) that
// the member was in the room, and how (camera or sound only). Within REJOIN_MS of the last
// time they were seen there, and when the browser still grants the camera and microphone
// without asking, the page joins again by itself. Leaving on purpose, being removed and the
// end of the meeting forget it.

export const REJOIN_MS = 3 * 60 * 1000;

const key = (meetingId, device) => `chibo.room.${meetingId}.${device}`;

export function remember(meetingId, device, { video }) {
  try { localStorage.setItem(key(meetingId, device), JSON.stringify({ at: Date.now(), video })); } catch { /* private mode */ }
}

export function forget(meetingId, device) {
  try { localStorage.removeItem(key(meetingId, device)); } catch { /* private mode */ }
}

async function granted(name) {
  if (!navigator.permissions || !navigator.permissions.query) return false;
  try { return (await navigator.permissions.query({ name })).state === "granted"; } catch { return false; }
}

// { video } to join again as before, or null to show the choice.
export async function rejoinChoice(meetingId, device) {
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(key(meetingId, device)) || "null"); } catch { return null; }
  if (!saved || typeof saved.at !== "number" || Date.now() - saved.at > REJOIN_MS) return null;
  const needed = saved.video ? ["microphone", "camera"] : ["microphone"];
  for (const name of needed) if (!(await granted(name))) return null;
  return { video: !!saved.video };
}
