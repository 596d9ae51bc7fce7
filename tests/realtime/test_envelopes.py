"""Envelopes between server processes: what one process encodes, another decodes the same;
what it cannot read it refuses by name instead of failing somewhere inside a room."""

import json

import pytest

from realtime import envelopes as env
from realtime.refusals import CloseCode

SAMPLES = [
    env.Join(meeting_id=7, proc="p1", conn=3, pid="m12", meeting={"id": 7, "title": "Sinh hoạt"},
             identity={"participant_id": "m12", "name": "Trần Thị Bích Ngọc"}),
    env.Msg(meeting_id=7, proc="p1", conn=3, pid="m12", frame='{"type":"ping","t":1}'),
    env.Msg(meeting_id=7, proc="p1", conn=3, pid="m12", sealed="c2VhbGVk"),
    env.Gone(meeting_id=7, proc="p1", conn=3, pid="m12"),
    env.Send(conns=[3, 4], frame='{"type":"pong","t":1}'),
    env.Close(conn=3, code=CloseCode.NOT_ALLOWED, reason="removed"),
    env.Command(meeting_id=7, name="close_room", message="Cuộc họp đã kết thúc."),
    env.Command(meeting_id=7, name="close_vote", motion_id=3, actor=[5, "Nguyễn Văn Ấn"]),
    env.Sessions(accounts=[5, 6], proc="p2"),
]


@pytest.mark.parametrize("envelope", SAMPLES, ids=lambda e: e.OP)
def test_what_is_encoded_decodes_the_same_across_json(envelope):
    wire = json.loads(json.dumps(env.encode(envelope), ensure_ascii=False))
    assert wire["op"] == envelope.OP
    assert env.decode(wire) == envelope


def test_a_message_carries_its_frame_or_its_sealed_cast_never_both():
    assert "sealed" not in env.encode(SAMPLES[1]) and "frame" not in env.encode(SAMPLES[2])
    with pytest.raises(env.EnvelopeError, match="exactly one"):
        env.decode({"op": "msg", "meeting_id": 7, "proc": "p1", "conn": 3, "pid": "m12", "frame": "{}", "sealed": "x"})


@pytest.mark.parametrize("data", [
    [], {"op": "teleport"}, {"conns": [1], "frame": "x"},
    {"op": "send", "conns": [1]},
    {"op": "send", "conns": ["1"], "frame": "x"},
    {"op": "close", "conn": 3, "code": 4999, "reason": "x"},
    {"op": "command", "meeting_id": 7, "name": "drop_table"},
    {"op": "gone", "meeting_id": True, "proc": "p1", "conn": 3, "pid": "m12"},
])
def test_unreadable_envelopes_are_refused_by_name(data):
    with pytest.raises(env.EnvelopeError):
        env.decode(data)
