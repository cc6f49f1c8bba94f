"""``overtalk engine check`` against each vendor's stand-in: the report an operator reads.

The check opens a real session over a real websocket, speaks Piper's caller lines in real time
and judges what comes back; the stand-ins play the vendors (credentials and URLs come from the
environment, as in production).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import textwrap

import pytest
from standins.gemini import GeminiScript, GeminiStandIn
from standins.moshi import MoshiStandIn
from standins.openai import OpenAIScript, OpenAIStandIn

from gateway.cli import main
from gateway.tools.enginecheck import CHECK_RESULT, run_check

RECORD = ("record_result", {"name": CHECK_RESULT, "value": "passed"})


def args(name: str, dialplan: str | None = None, route: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(name=name, dialplan=dialplan, route=route, config=None)


async def check(name: str, **kwargs: str | None) -> tuple[int, str]:
    out = io.StringIO()
    status = await run_check(args(name, **kwargs), out=out)
    return status, out.getvalue()


def plan(tmp_path, engine: str, options: str) -> str:
    path = tmp_path / "plan.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            timezone: UTC
            default_route: main
            routes:
              main:
                otherwise: hangup
              sales:
                numbers: ["+12125550100"]
                otherwise:
                  action: bot
                  engine: {engine}
                  prompt: You sell tickets.
                  options: {options}
            """
        )
    )
    return str(path)


async def test_openai_check_passes_every_step_with_the_routes_settings(tmp_path, monkeypatch):
    script = OpenAIScript(tool_call=RECORD, reply_ms=3000)
    async with OpenAIStandIn(script) as standin:
        monkeypatch.setenv("OPENAI_REALTIME_URL", standin.url)
        monkeypatch.setenv("OPENAI_API_KEY", script.api_key)
        path = plan(tmp_path, "openai", "{silence_duration_ms: 400, voice: marin}")
        status, out = await check("openai", dialplan=path, route="sales")

    assert status == 0, out
    for step in ("connected", "session accepted", "first audio back", "transcripts",
                 "tool round trip", "interruption"):  # fmt: skip
        assert any(line.split()[:1] == ["ok"] and step in line for line in out.splitlines())
    assert f"record_result {CHECK_RESULT}=passed" in out and "truncated item_" in out
    assert "caller: caller utterance 1" in out and "bot: bot reply 1" in out
    (conn,) = standin.connections
    assert conn.session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 400
    assert "You sell tickets." in conn.session["instructions"]
    assert conn.errors_sent == [] and conn.truncates


async def test_openai_check_fails_with_the_vendors_words_on_a_wrong_key(monkeypatch):
    async with OpenAIStandIn() as standin:
        monkeypatch.setenv("OPENAI_REALTIME_URL", standin.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
        status, out = await check("openai")
    assert status == 1
    assert "FAIL connected" in out and "HTTP 401" in out and "API key" in out


async def test_openai_check_refused_session_says_so(monkeypatch):
    async with OpenAIStandIn(OpenAIScript(session_error="Invalid model 'gpt-nope'")) as standin:
        monkeypatch.setenv("OPENAI_REALTIME_URL", standin.url)
        monkeypatch.setenv("OPENAI_API_KEY", standin.script.api_key)
        status, out = await check("openai")
    assert status == 1
    assert "ok   connected" in out and "FAIL session accepted" in out
    assert "Invalid model 'gpt-nope'" in out


async def test_gemini_check_through_the_command_line(monkeypatch, capsys):
    script = GeminiScript(tool_call=RECORD, reply_ms=2500)
    async with GeminiStandIn(script) as standin:
        monkeypatch.setenv("GEMINI_LIVE_URL", standin.url)
        monkeypatch.setenv("GEMINI_API_KEY", script.api_key)
        status = await asyncio.to_thread(main, ["engine", "check", "gemini"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"record_result {CHECK_RESULT}=passed" in out and "nothing to truncate" in out
    assert "caller: caller utterance 1" in out and "bot: bot reply 1" in out
    assert standin.connections[0].interrupted >= 1


async def test_gemini_check_reports_a_bad_key_as_authentication(monkeypatch):
    async with GeminiStandIn() as standin:
        monkeypatch.setenv("GEMINI_LIVE_URL", standin.url)
        monkeypatch.setenv("GEMINI_API_KEY", "wrong")
        status, out = await check("gemini")
    assert status == 1 and "API key not valid" in out and "authentication" in out


async def test_moshi_check_marks_what_moshi_does_not_do(monkeypatch):
    async with MoshiStandIn() as standin:
        monkeypatch.setenv("MOSHI_URL", standin.url)
        status, out = await check("moshi")
    assert status == 0, out
    assert "n/a  tool round trip" in out and "n/a  interruption" in out
    assert "bot: reply 1" in out


def test_check_refuses_a_route_for_another_engine(tmp_path, capsys):
    path = plan(tmp_path, "gemini", "{}")
    assert main(["engine", "check", "openai", "--dialplan", path, "--route", "sales"]) == 2
    assert "uses engine 'gemini'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["engine", "check"])
