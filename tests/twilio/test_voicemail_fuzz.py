"""Property-based fuzzing of the voicemail callbacks: whatever Twilio (or anyone) posts, the
callback is classified or refused with ``BadCallback``, and what is accepted names files and
URLs only through well-formed SIDs (issue 13, finding 3)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.carriers.twilio.voicemail import (
    BadCallback,
    RecordEnded,
    RecordingReport,
    TranscriptionReport,
    audio_url,
    classify,
    message_files,
    recording_record,
    transcription_record,
)
from gateway.ids import CALL_SID, RECORDING_SID, is_file_token, is_twilio_sid

CALL = "CA" + "a" * 32
REC = "RE" + "b" * 32
URL = f"https://api.twilio.com/2010-04-01/Accounts/AC{'c' * 32}/Recordings/{REC}"

NASTY = [
    "", "../x", "CA" + "a" * 31 + "\x00", CALL + "\n", "http://[::1", "https://x:99999/", "²",
    "١٢", "completed", "in-progress", "absent", "failed", URL, URL + "?x=1", CALL, REC,
    "TR" + "d" * 32, "https://evil.example/Recordings/" + REC, "9" * 40, "-1",
]  # fmt: skip
values = st.sampled_from(NASTY) | st.text(max_size=60)
FIELDS = [
    "CallSid", "RecordingSid", "RecordingUrl", "RecordingStatus", "RecordingDuration",
    "TranscriptionSid", "TranscriptionText", "TranscriptionStatus", "From", "To", "Digits",
]  # fmt: skip
forms = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), values, max_size=10)
GOOD = {"CallSid": CALL, "RecordingSid": REC, "RecordingUrl": URL, "RecordingStatus": "completed",
        "RecordingDuration": "7"}  # fmt: skip
near_good = st.builds(lambda base, extra: {**base, **extra}, st.just(GOOD), forms)


@settings(max_examples=400, deadline=None)
@given(forms | near_good, st.sampled_from(["", "http://127.0.0.1:9"]))
def test_voicemail_callbacks_are_classified_or_refused_and_nothing_else(params, api_base):
    try:
        callback = classify(params)
    except BadCallback:
        return
    at = datetime(2026, 1, 1, tzinfo=UTC)
    match callback:
        case RecordEnded():
            assert len(callback.call_sid) <= 64 and len(callback.digits) <= 32
        case RecordingReport():
            files = message_files(callback.call_sid, callback.recording_sid)
            assert is_file_token(files.audio) and is_file_token(files.record)
            if callback.recording_url:
                try:
                    url = audio_url(callback, api_base)
                except BadCallback:
                    pass
                else:
                    assert url.endswith(f"/Recordings/{callback.recording_sid}.wav")
            record = recording_record(None, callback, route="r", branch="b", caller="",
                                      called="", received_at=at)  # fmt: skip
            orjson.dumps(record)
        case TranscriptionReport():
            assert is_twilio_sid(callback.call_sid, CALL_SID)
            assert is_twilio_sid(callback.recording_sid, RECORDING_SID)
            record = transcription_record(None, callback, route="r", branch="b", caller="",
                                          called="", received_at=at)  # fmt: skip
            assert len(record["transcription"]["text"]) <= 20000
            orjson.dumps(record)


def test_voicemail_duration_in_other_digits_is_not_a_crash():
    report = classify({**GOOD, "RecordingDuration": "²"})  # int("²") raised ValueError before
    assert isinstance(report, RecordingReport) and report.duration is None


def test_voicemail_malformed_recording_url_is_a_bad_callback():
    try:
        classify({**GOOD, "RecordingUrl": "http://[::1/Recordings/" + REC})
    except BadCallback as exc:
        assert "malformed URL" in str(exc)
    else:
        raise AssertionError("a malformed URL was accepted")
