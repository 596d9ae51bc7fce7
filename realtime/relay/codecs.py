"""Keyframes, codec pinning and RED.

Frames are forwarded exactly as the publisher encoded them, so the relay cannot transcode:
both legs of every track are pinned to one codec per kind (VP8 with RTX for video, Opus for
audio). A frame of any other codec is dropped, never handed to a packetiser of another.

Audio may also travel as **RED** (RFC 2198, ``audio/red`` carrying Opus): each packet holds
the current Opus frame and the previous one, so a single lost packet is repaired at the
receiver instead of concealed. aiortc does not know RED; ``register_red()`` adds it to
aiortc's codec table (after Opus: an aiortc peer that does not ask for it never gets it).
The relay offers Opus first and RED second; a browser that prefers RED answers with it
first (static/room/peers.js ``preferRed``), so it sends RED on its upload m-line and gets
RED on the m-lines it receives. A subscriber that answered Opus gets the primary frame, and
the frames the relay recovered from redundancy when the publisher's own packets were lost.
"""

from __future__ import annotations

from typing import Any

from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import CODECS
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

VIDEO_CODEC = "video/VP8"
AUDIO_CODEC = "audio/opus"
#: aiortc.codecs.vpx.PACKET_MAX: payload descriptor + data per RTP packet.
VP8_PACKET_MAX = 1300
RED_CODEC = "audio/red"
#: aiortc's (static) Opus payload type, which the RED blocks name; RED's own type must be
#: free in aiortc's table across audio and video (bundled m-lines share one space).
OPUS_PT = 96
RED_PT = 110
#: What the relay asks publishers for: Opus with in-band FEC (a receiver that does not say
#: ``useinbandfec=1`` gets none), 10 ms packets allowed.
OPUS_PARAMETERS = {"minptime": 10, "useinbandfec": 1}


def register_red() -> None:
    """Add RED for Opus to aiortc's audio codecs (once), and FEC to its Opus."""
    audio = CODECS["audio"]
    opus = next(c for c in audio if c.mimeType.lower() == AUDIO_CODEC)
    if opus.payloadType != OPUS_PT:
        raise RuntimeError(f"aiortc's Opus payload type is {opus.payloadType}, not {OPUS_PT}")
    for key, value in OPUS_PARAMETERS.items():
        opus.parameters.setdefault(key, value)
    if any(c.mimeType.lower() == RED_CODEC for c in audio):
        return
    taken = {c.payloadType for kind in CODECS.values() for c in kind}
    if RED_PT in taken:
        raise RuntimeError(f"payload type {RED_PT} is taken in aiortc's codec table")
    audio.append(RTCRtpCodecParameters(mimeType="audio/red", clockRate=48000, channels=2, payloadType=RED_PT,
                                       parameters={f"{OPUS_PT}/{OPUS_PT}": None}))


def parse_red(payload: bytes) -> list[tuple[int, int, bytes]] | None:
    """RFC 2198: ``[(payload type, timestamp offset, data), …]``, oldest first, the primary
    (offset 0) last; None if the payload is not well formed."""
    headers: list[tuple[int, int, int | None]] = []
    pos, size = 0, len(payload)
    while True:
        if pos >= size:
            return None
        first = payload[pos]
        if first & 0x80:
            if pos + 4 > size:
                return None
            word = int.from_bytes(payload[pos:pos + 4], "big")
            headers.append(((word >> 24) & 0x7F, (word >> 10) & 0x3FFF, word & 0x3FF))
            pos += 4
        else:
            headers.append((first & 0x7F, 0, None))
            pos += 1
            break
    blocks = []
    for pt, offset, length in headers:
        if length is None:
            length = size - pos
        if pos + length > size:
            return None
        blocks.append((pt, offset, payload[pos:pos + length]))
        pos += length
    return blocks


def build_red(pt: int, primary: bytes, redundant: list[tuple[int, bytes]]) -> bytes:
    """An RFC 2198 payload: ``redundant`` as (timestamp offset, data), oldest first, then the
    primary. Blocks that do not fit the header's fields (offset ≥ 2¹⁴, length ≥ 2¹⁰) are left out."""
    fits = [(offset, data) for offset, data in redundant if 0 < offset < 0x4000 and len(data) < 0x400]
    header = b"".join((((0x80 | pt) << 24) | (offset << 10) | len(data)).to_bytes(4, "big") for offset, data in fits)
    return header + bytes([pt]) + b"".join(data for _, data in fits) + primary


def codec_for(kind: str) -> str:
    return VIDEO_CODEC if kind == "video" else AUDIO_CODEC


def vp8_frame_is_keyframe(data: bytes) -> bool:
    """A reassembled VP8 frame (payload descriptor stripped, as in ``JitterFrame.data``).

    RFC 6386 §9.1 / RFC 7741 §4.3: bit 0 of the first byte is the inverse key-frame flag P
    (0 = key frame), and key frames carry the start code 9d 01 2a at bytes 3–5.
    """
    return len(data) >= 6 and not (data[0] & 0x01) and data[3:6] == b"\x9d\x01\x2a"


def vp8_rtp_payload_is_keyframe_start(payload: bytes) -> bool:
    """The first RTP packet of a VP8 key frame (for packet-level tools such as the bench).

    Parses the RFC 7741 payload descriptor: S=1 and PID=0 start a frame; the byte after the
    descriptor is the VP8 payload header whose bit 0 (P) is 0 for key frames.
    """
    if not payload:
        return False
    b0 = payload[0]
    if not (b0 & 0x10) or (b0 & 0x0F):
        return False
    pos = 1
    if b0 & 0x80:  # X: extension byte follows
        if len(payload) < 2:
            return False
        x = payload[1]
        pos = 2
        if x & 0x80:  # I: PictureID, 1 or 2 bytes
            if len(payload) <= pos:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            pos += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    return len(payload) > pos and not (payload[pos] & 0x01)


def is_keyframe(mime_type: str, data: bytes) -> bool:
    if mime_type.lower() == "video/vp8":
        return vp8_frame_is_keyframe(data)
    return not mime_type.lower().startswith("video/")  # every Opus frame stands alone


def pin_codec(transceiver: RTCRtpTransceiver, kind: str | None = None, *, red_first: bool = False) -> None:
    """Offer or accept only the relay's codec for this transceiver (plus RTX for video, RED
    after Opus for audio — before it with ``red_first``)."""
    kind = kind or transceiver.kind
    mime = codec_for(kind).lower()
    caps = RTCRtpSender.getCapabilities(kind).codecs
    prefs = [c for c in caps if c.mimeType.lower() == mime]
    if kind == "video":
        prefs += [c for c in caps if c.mimeType.lower() == "video/rtx"]
    else:
        red = [c for c in caps if c.mimeType.lower() == RED_CODEC]
        prefs = red + prefs if red_first else prefs + red
    transceiver.setCodecPreferences(prefs)


def answer_prefers_red(media: Any) -> bool:
    """Whether an answer's audio section (``aiortc.sdp.MediaDescription``) lists RED before Opus.

    aiortc orders the negotiated codecs by the *local* preferences (Opus first, as the
    relay offers), so it would send Opus to a browser that answered RED first; the relay
    follows the answerer's choice instead (``RelayLink._on_answer``)."""
    names = [c.mimeType.lower() for c in media.rtp.codecs]
    return RED_CODEC in names and AUDIO_CODEC in names and names.index(RED_CODEC) < names.index(AUDIO_CODEC)
