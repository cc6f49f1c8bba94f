"""Turning wire timings into the call report: turn windows, misses, and the outputs."""

from __future__ import annotations

import orjson

from gateway.sim.report import CallReport, TwimlVerb, resolve_turns
from gateway.sim.script import TurnRecord


def say(index: int, start: float, end: float) -> TurnRecord:
    return TurnRecord(index, "say", f"s{index}", start, start, end, end)


def barge(index: int, start: float, end: float) -> TurnRecord:
    return TurnRecord(index, "barge_in", f"b{index}", start, start, end, end)


def test_report_response_is_first_voiced_arrival_after_speech_end() -> None:
    turns = [say(0, 0.0, 1.0)]
    (result,) = resolve_turns(turns, [0.5, 1.3, 1.4], [], t0=0.0)
    assert result.response_ms == 300.0  # the 0.5 arrival overlapped the caller: not an answer
    assert result.speech_end_ms == 1000.0


def test_report_response_window_closes_at_next_utterance() -> None:
    turns = [say(0, 0.0, 1.0), say(1, 2.0, 3.0)]
    first, second = resolve_turns(turns, [2.5, 3.2], [], t0=0.0)
    assert first.response_ms is None and first.note == "no bot audio"
    assert second.response_ms == 200.0


def test_report_barge_in_latency_to_clear_or_missed() -> None:
    turns = [say(0, 0.0, 1.0), barge(1, 2.0, 2.5), barge(2, 4.0, 4.5)]
    results = resolve_turns(turns, [1.2, 2.1, 2.8, 4.1], [2.15], t0=0.0)
    assert results[1].barge_in_ms == 150.0
    assert results[1].response_ms == 300.0  # caught: its reply is timed too
    assert results[2].barge_in_ms is None and results[2].note == "missed: no clear"
    assert results[2].response_ms is None  # the bot never stopped: no answer to time


def test_report_outputs_table_and_json() -> None:
    turns = [say(0, 10.0, 11.0), barge(1, 12.0, 12.5)]
    report = CallReport(
        call_sid="CA1",
        ended_by="caller",
        streamed=True,
        twiml=[TwimlVerb("Connect", {}, "", (TwimlVerb("Stream", {"url": "wss://x/y"}, ""),))],
        turns=resolve_turns(turns, [11.25], [12.1], t0=10.0),
    )
    assert report.ok
    assert report.summary()["response_p50_ms"] == 250.0
    assert report.summary()["barge_ins_caught"] == 1
    table = report.format()
    assert "250 ms" in table and "100 ms" in table and "Connect > Stream(url=wss://x/y)" in table
    data = orjson.loads(orjson.dumps(report.to_dict(events=True)))
    assert data["turns"][0]["response_ms"] == 250.0
    assert data["twiml"][0]["children"][0]["attributes"] == {"url": "wss://x/y"}
    assert report.twiml_verbs() == [("Connect", {}, ""), ("Stream", {"url": "wss://x/y"}, "")]


def test_report_violations_make_it_not_ok() -> None:
    report = CallReport(ended_by="caller", violations=["#3 media: bad"])
    assert not report.ok and not report.failed
    assert "#3 media: bad" in report.format()


def test_report_gateway_close_abnormal_is_failure() -> None:
    assert not CallReport(ended_by="gateway", close_code=1000).failed
    assert CallReport(ended_by="gateway", close_code=1011).failed
    assert CallReport(ended_by="gateway", close_code=1006).failed
    assert CallReport(ended_by="error").failed
