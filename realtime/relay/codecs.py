"""Keyframes and codec pinning.

Frames are forwarded exactly as the publisher encoded them, so the relay cannot transcode:
both legs of every track are pinned to one codec per kind (VP8 with RTX for video, Opus for
audio). A frame of any other codec is dropped, never handed to a packetiser of another.
"""

from __future__ import annotations

from aiortc import RTCRtpSender, RTCRtpTransceiver

VIDEO_CODEC = "video/VP8"
AUDIO_CODEC = "audio/opus"
#: aiortc.codecs.vpx.PACKET_MAX: payload descriptor + data per RTP packet.
VP8_PACKET_MAX = 1300


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


def pin_codec(transceiver: RTCRtpTransceiver, kind: str | None = None) -> None:
    """Offer or accept only the relay's codec for this transceiver (plus RTX for video)."""
    kind = kind or transceiver.kind
    mime = codec_for(kind).lower()
    caps = RTCRtpSender.getCapabilities(kind).codecs
    prefs = [c for c in caps if c.mimeType.lower() == mime]
    if kind == "video":
        prefs += [c for c in caps if c.mimeType.lower() == "video/rtx"]
    transceiver.setCodecPreferences(prefs)
