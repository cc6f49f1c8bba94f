"""Audio by URL (recordings moved into the audio store, the record pointing to them) and
retention (``--retain-days``) enforced by the gateway itself."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from callkit import finished_call
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.callstore.audio import UnsupportedAudioStore, open_audio_store
from gateway.callstore.record import row_from_record
from gateway.callstore.service import CallData
from gateway.callstore.spool import Spool
from gateway.callstore.store import open_call_store
from gateway.callstore.writer import RecordWriter
from gateway.config import ConfigError, Settings, load_settings

DAY = 86400.0


def test_writer_moves_the_recording_into_the_audio_store(tmp_path: Path) -> None:
    carrier_dir, audio_dir = tmp_path / "recordings", tmp_path / "audio"
    carrier_dir.mkdir()
    ledger = finished_call()
    (carrier_dir / f"{ledger.call_id}.wav").write_bytes(b"RIFF....WAVE")
    dsn = str(tmp_path / "calls.db")
    writer = RecordWriter(lambda: open_call_store(dsn), Spool(tmp_path / "spool"), gateway="g",
                          audio=open_audio_store(audio_dir.as_uri()),
                          recording_dirs=[carrier_dir])  # fmt: skip
    writer.start()
    writer.submit(ledger)
    writer.close()
    moved = audio_dir / f"{ledger.call_id}.wav"
    assert moved.read_bytes() == b"RIFF....WAVE"
    assert not (carrier_dir / f"{ledger.call_id}.wav").exists()
    store = open_call_store(dsn)
    try:
        record = store.record(ledger.call_id)
        assert record is not None and record["audio_url"] == moved.resolve().as_uri()
    finally:
        store.close()


def test_audio_store_refuses_what_is_not_built_and_urls_outside_it(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedAudioStore, match="only file://"):
        open_audio_store("s3://bucket/calls")
    audio = open_audio_store(str(tmp_path / "audio"))
    (tmp_path / "secret.wav").write_bytes(b"x")
    assert audio.local_path((tmp_path / "secret.wav").as_uri()) is None
    assert audio.local_path("file:///etc/passwd") is None
    assert audio.local_path("http://example.com/a.wav") is None
    with pytest.raises(ValueError):
        audio.path_for("../secret")


def aged(path: Path, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then))


def test_retention_deletes_old_calls_audio_voicemail_and_exports(tmp_path: Path) -> None:
    records, audio = tmp_path / "records", tmp_path / "audio"
    records.mkdir()
    (audio / "voicemail").mkdir(parents=True)
    settings = Settings(records_dir=str(records), audio_store=audio.as_uri(), retain_days=7)
    data = CallData(settings, str(records / "calls.db"))
    now = time.time()
    old, new = finished_call(ended_at=now - 30 * DAY), finished_call(ended_at=now - DAY)
    store = open_call_store(data.dsn)
    for ledger in (old, new):
        wav = audio / f"{ledger.call_id}.wav"
        wav.write_bytes(b"RIFF")
        store.save(row_from_record(ledger.to_dict(), audio_url=wav.as_uri(), gateway="g"), now)
        (records / f"{ledger.call_id}.json").write_text("{}")
    aged(audio / f"{old.call_id}.wav", 30)
    aged(records / f"{old.call_id}.json", 30)
    (audio / "voicemail" / "old-message.wav").write_bytes(b"RIFF")
    aged(audio / "voicemail" / "old-message.wav", 9)
    (audio / "voicemail" / "new-message.wav").write_bytes(b"RIFF")

    calls, files = data.expire(now)

    assert calls == 1 and files == 3
    assert store.record(old.call_id) is None and store.record(new.call_id) is not None
    assert sorted(p.name for p in audio.rglob("*.wav")) == [f"{new.call_id}.wav",
                                                            "new-message.wav"]  # fmt: skip
    assert [p.name for p in records.glob("*.json")] == [f"{new.call_id}.json"]
    assert (records / "calls.db").exists()  # the store itself is never pruned
    store.close()


def test_gateway_enforces_retention_at_start(tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    old = finished_call(ended_at=time.time() - 3 * DAY)
    store = open_call_store(str(records / "calls.db"))
    store.save(row_from_record(old.to_dict(), audio_url=None, gateway="g"), time.time())
    settings = Settings(engine="echo", records_dir=str(records), retain_days=2)
    with TestClient(create_app(settings)):
        deadline = time.monotonic() + 30
        while store.record(old.call_id) is not None:
            assert time.monotonic() < deadline, "retention did not run"
            time.sleep(0.05)
    store.close()


def test_settings_retention_and_admin_token() -> None:
    env = {"OVERTALK_ADMIN_TOKEN": "t0ken", "OVERTALK_RETAIN_DAYS": "30",
           "OVERTALK_STORE": "postgresql://db/overtalk"}  # fmt: skip
    settings = load_settings(environ=env)
    assert (settings.admin_token, settings.retain_days, settings.store) == (
        "t0ken", 30.0, "postgresql://db/overtalk")  # fmt: skip
    for bad in ("-1", "nan"):
        with pytest.raises(ConfigError, match="retain_days"):
            load_settings(environ={"OVERTALK_RETAIN_DAYS": bad})
