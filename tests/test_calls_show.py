"""``overtalk calls show`` reads and writes only inside its directories (issue 13, finding 6)."""

from __future__ import annotations

import pytest

from gateway.cli import main


@pytest.mark.parametrize("call_id", ["../outside/secret", "/etc/passwd", "..", "CA1/../../x"])
def test_calls_show_refuses_a_call_id_that_is_a_path(tmp_path, capsys, monkeypatch, call_id):
    records = tmp_path / "records"
    records.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"call_id": "stolen", "events": []}')
    monkeypatch.chdir(records)  # the default output lands in the working directory
    code = main(["calls", "show", call_id, "--records-dir", str(records)])
    assert code == 2
    assert "not valid" in capsys.readouterr().err
    assert sorted(p.name for p in outside.iterdir()) == ["secret.json"]
    assert list(records.iterdir()) == []
