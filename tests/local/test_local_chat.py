"""A chat model as the brain: the streaming client against a local stand-in that speaks the
chat-completions Server-Sent Events format, and a session speaking its reply sentence by
sentence."""

from __future__ import annotations

import asyncio
import json
import time

import localkit as lk
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from localkit import Call, until

from engine.base import Audio, CallContext, Transcript
from engine.local import LocalEngine
from engine.local.chat import ChatClient, ChatError, ChatResponder
from gateway.server import serve

REPLY = ["We are ", "open until ten", " tonight. ", "Would you like ", "to book a table?"]


def stand_in(seen: list[dict]) -> FastAPI:
    """``POST /v1/chat/completions`` as the OpenAI API streams it: a role chunk, content
    chunks, a final chunk with ``finish_reason``, then ``data: [DONE]``."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        body = await request.json()
        seen.append({"body": body, "auth": request.headers.get("authorization")})
        if body["model"] == "broken":
            return JSONResponse({"error": {"message": "no such model"}}, status_code=404)

        async def events():
            base = {"id": "chatcmpl-1", "object": "chat.completion.chunk",
                    "created": int(time.time()), "model": body["model"]}  # fmt: skip
            first = {"index": 0, "delta": {"role": "assistant", "content": ""}}
            yield f"data: {json.dumps({**base, 'choices': [first]})}\n\n"
            yield ": keep-alive comment\n\n"
            for piece in REPLY:
                delta = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                yield f"data: {json.dumps({**base, 'choices': [delta]})}\n\n"
                await asyncio.sleep(0.01)
            end = {"index": 0, "delta": {}, "finish_reason": "stop"}
            yield f"data: {json.dumps({**base, 'choices': [end]})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


async def test_chat_client_streams_pieces_in_order() -> None:
    seen: list[dict] = []
    async with serve(stand_in(seen)) as url:
        client = ChatClient(url + "/v1", "tiny", api_key="sk-test")
        pieces = [p async for p in client.stream([{"role": "user", "content": "Hi"}])]
        await client.aclose()
    assert pieces == REPLY
    assert seen[0]["body"]["stream"] is True and seen[0]["body"]["model"] == "tiny"
    assert seen[0]["auth"] == "Bearer sk-test"


async def test_chat_client_reports_an_error_status() -> None:
    async with serve(stand_in([])) as url:
        client = ChatClient(url + "/v1", "broken")
        with pytest.raises(ChatError, match="HTTP 404"):
            _ = [p async for p in client.stream([{"role": "user", "content": "Hi"}])]
        await client.aclose()


def test_chat_responder_keeps_only_what_was_heard() -> None:
    responder = ChatResponder(ChatClient("http://127.0.0.1:9/v1", "m"), "Be nice.", "Hello!")
    responder.start()
    responder.messages.append({"role": "assistant", "content": "We are open until ten tonight."})
    responder.heard("We are open until ten tonight.", "We are open")
    assert responder.messages[-1] == {"role": "assistant", "content": "We are open ..."}


async def test_chat_session_speaks_the_reply_sentence_by_sentence() -> None:
    seen: list[dict] = []
    voice = lk.ToneVoice()
    async with serve(stand_in(seen)) as url:
        engine = LocalEngine(
            flow=None,
            llm_url=url + "/v1",
            llm_model="tiny",
            recognizer=lk.ScriptedRecognizer(lambda s: "When do you close?"),
            synthesizer=voice,
            vad=lk.EnergyVad(),
        )
        session = await engine.open(CallContext("CA1", parameters={"prompt": "You are Luigi's."}))
        call = Call(session)
        await until(lambda: call.of(Audio), "the greeting")
        while call.session._samples < call.session._play_end + 8000:
            call.feed(lk.silence(0.2))
            await asyncio.sleep(0)
        call.feed(lk.tone(1.0))
        call.feed(lk.silence(0.6))
        await until(lambda: "to book a table?" in " ".join(call.said()), "the streamed reply")
        said = call.said()
        assert said[-2:] == ["We are open until ten tonight.", "Would you like to book a table?"]
        assert said[-3] in ("Mm-hmm.", "Okay.", "Right.")  # the acknowledgement came first
        sent = seen[0]["body"]["messages"]
        assert sent[0]["role"] == "system" and "You are Luigi's." in sent[0]["content"]
        assert sent[-1] == {"role": "user", "content": "When do you close?"}
        assert Transcript("caller", "When do you close?", final=True) in call.events
        await call.close()
        await engine.aclose()
