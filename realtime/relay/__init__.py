"""The media relay: a server-side aiortc peer that forwards encoded VP8 and Opus frames.

Modules, from the wire inwards:

* ``internals`` — the few aiortc 1.16 internals the relay hooks, and the check that fails
  loudly when an aiortc upgrade changes them;
* ``codecs`` — keyframe detection and codec pinning (frames are forwarded as they are, so
  both legs must use one codec per kind);
* ``forwarding`` — ``ForwardedSource`` (one per published track: keyframe requests,
  fan-out) and ``ForwardedTrack`` (one per subscriber and track: bounded queue, keyframe
  gating, resync, pause);
* ``downlink`` — the weak-downlink guard (pause a subscriber's video, keep its audio);
* ``server`` — ``RelayServer``: one room's relay, one peer connection per participant,
  renegotiated by the relay (always the offering side).

See docs/relay.md for the design and measurements.
"""

from .forwarding import ForwardedSource, ForwardedTrack
from .internals import IncompatibleAiortc, check_aiortc_internals

__all__ = ["ForwardedSource", "ForwardedTrack", "IncompatibleAiortc", "check_aiortc_internals"]
