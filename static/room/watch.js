// One peer connection's state, as both the mesh links and the relay link report it: every
// change goes to onState; "failed", "disconnected" for 8 s, or not connected 15 s after the
// start becomes "stuck" (the room then restarts ICE or rebuilds the link); onConnected runs on
// each (re)connection. Returns the function that stops watching.
export function watchConnection(pc, onState, onConnected) {
  let disconnectTimer = null;
  const stuckUnlessConnected = () => { if (pc.connectionState !== "connected") onState("stuck"); };
  pc.onconnectionstatechange = () => {
    const state = pc.connectionState;
    onState(state);
    clearTimeout(disconnectTimer);
    if (state === "connected") onConnected();
    if (state === "failed") onState("stuck");
    if (state === "disconnected") disconnectTimer = setTimeout(stuckUnlessConnected, 8000);
  };
  const watchdog = setTimeout(stuckUnlessConnected, 15000);
  return () => {
    clearTimeout(watchdog);
    clearTimeout(disconnectTimer);
    pc.onconnectionstatechange = null;
  };
}
