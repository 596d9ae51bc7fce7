"""A relay subscriber in another network namespace, driven over stdin/stdout (JSON lines).

Run by tests/realtime/test_relay_weak_downlink.py as
``ip netns exec <ns> python -m tests.support.weak_subscriber <its address>``, so that its
media crosses a veth pair whose relay-side end has a tbf rate limit: a real weak downlink.

In:  {"type": "relay_tracks", …} and {"type": "offer", "sdp": …} as the relay sends them;
     {"type": "stats"}; {"type": "quit"}.
Out: {"type": "answer", "sdp": …}; {"type": "stats", "audio": {...}, "video": {...}}.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aioice.ice
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from realtime.relay.internals import RECEIVER_DECODER_QUEUE
from tests.support.relay_peers import _SpyQueue, answer_upload


async def main(address: str) -> None:
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: [address]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    frames = {"audio": 0, "video": 0}
    receivers: dict[str, Any] = {}

    @pc.on("track")
    def on_track(track: Any) -> None:
        transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
        receivers[track.kind] = transceiver.receiver
        original = getattr(transceiver.receiver, RECEIVER_DECODER_QUEUE)

        def count(codec: Any, frame: Any, kind: str = track.kind) -> None:
            frames[kind] += 1

        setattr(transceiver.receiver, RECEIVER_DECODER_QUEUE, _SpyQueue(original, count, decode=False))

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    upload: dict[str, str] = {}

    def out(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    while line := await reader.readline():
        message = json.loads(line)
        if message["type"] == "relay_tracks":
            upload = message["upload"]
        elif message["type"] == "offer":
            await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="offer"))
            answer_upload(pc, upload, {})
            await pc.setLocalDescription(await pc.createAnswer())
            out({"type": "answer", "sdp": pc.localDescription.sdp})
        elif message["type"] == "stats":
            report: dict[str, Any] = {"type": "stats", "state": pc.connectionState}
            for kind, receiver in receivers.items():
                inbound = [s for s in (await receiver.getStats()).values() if s.type == "inbound-rtp"]
                report[kind] = {"frames": frames[kind],
                                "received": sum(s.packetsReceived for s in inbound),
                                "lost": sum(s.packetsLost for s in inbound)}
            out(report)
        elif message["type"] == "quit":
            break
    await pc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
