"""A chat model as the brain: the streaming client against a local stand-in that speaks the
chat-completions Server-Sent Events format, and a session speaking its reply sentence by
sentence."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import localkit as lk
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from localkit import Call, until

from engine.base import Audio, CallContext, Hangup, Transcript, Transfer
from engine.local import LocalEngine
from engine.local.chat import ChatClient, ChatError, ChatResponder, ToolCall
from gateway.ops.server import serve

REPLY = ["We are ", "open until ten", " tonight. ", "Would you like ", "to book a table?"]
#: Per model name: the text pieces, then the tool-call deltas the stand-in streams.
SCRIPTS = {
    "tiny": (REPLY, []),
    "hangs-up": (
        ["Glad I could help. ", "Goodbye!"],
        [
            [{"index": 0, "id": "call_1", "type": "function",
              "function": {"name": "end_call", "arguments": ""}}],
            [{"index": 0, "function": {"arguments": "{}"}}],
        ],
    ),
    "hangs-up-silently": ([], [[{"index": 0, "id": "call_1", "type": "function",
                                 "function": {"name": "end_call", "arguments": "{}"}}]]),
    "transfers": (
        ["Let me put you through."],
        [
            [{"index": 0, "id": "call_7", "type": "function",
              "function": {"name": "transfer_call", "arguments": '{"rea'}}],
            [{"index": 0, "function": {"arguments": 'son": "billing"}'}}],
        ],
    ),
    # Some servers reuse index 0 for parallel calls, telling them apart by a new id only.
    "two-calls-one-index": ([], [
        [{"index": 0, "id": "a", "type": "function",
          "function": {"name": "lookup", "arguments": "{}"}}],
        [{"index": 0, "id": "b", "type": "function",
          "function": {"name": "end_call", "arguments": "{}"}}],
    ]),
}  # fmt: skip


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
            pieces, calls = SCRIPTS[body["model"]]
            for piece in pieces:
                delta = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                yield f"data: {json.dumps({**base, 'choices': [delta]})}\n\n"
                await asyncio.sleep(0.01)
            for entries in calls:
                delta = {"index": 0, "delta": {"tool_calls": entries}, "finish_reason": None}
                yield f"data: {json.dumps({**base, 'choices': [delta]})}\n\n"
            end = {"index": 0, "delta": {}, "finish_reason": "tool_calls" if calls else "stop"}
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
    call, seen = await chat_call(
        "tiny",
        {"prompt": "You are Luigi's."},
        "When do you close?",
        lambda call: "to book a table?" in " ".join(call.said()),
    )
    said = call.said()
    assert said[-2:] == ["We are open until ten tonight.", "Would you like to book a table?"]
    assert said[-3] in ("Mm-hmm.", "Okay.", "Right.")  # the acknowledgement came first
    sent = seen[0]["body"]["messages"]
    assert sent[0]["role"] == "system" and "You are Luigi's." in sent[0]["content"]
    assert sent[-1] == {"role": "user", "content": "When do you close?"}
    assert Transcript("caller", "When do you close?", final=True) in call.events


async def test_chat_client_assembles_streamed_tool_calls() -> None:
    async with serve(stand_in([])) as url:
        client = ChatClient(url + "/v1", "transfers")
        items = [p async for p in client.stream([{"role": "user", "content": "Billing"}])]
        assert items == ["Let me put you through.",
                         ToolCall("transfer_call", '{"reason": "billing"}')]  # fmt: skip
        client = ChatClient(url + "/v1", "two-calls-one-index")
        items = [p async for p in client.stream([{"role": "user", "content": "Bye"}])]
        assert items == [ToolCall("lookup", "{}"), ToolCall("end_call", "{}")]
        await client.aclose()


async def chat_call(
    model: str,
    parameters: dict[str, str],
    words: str = "That's all, thanks.",
    done: Callable[[Call], object] = lambda call: call.of(Hangup) or call.of(Transfer),
) -> tuple[Call, list[dict]]:
    """A chat-brained local session after the greeting and one caller turn (heard as
    ``words``), once ``done``; and the requests the chat stand-in received."""
    seen: list[dict] = []
    async with serve(stand_in(seen)) as url:
        engine = LocalEngine(
            flow=None,
            llm_url=url + "/v1",
            llm_model=model,
            recognizer=lk.ScriptedRecognizer(lambda s: words),
            synthesizer=lk.ToneVoice(),
            vad=lk.EnergyVad(),
        )
        session = await engine.open(CallContext("CA1", parameters=parameters))
        call = Call(session)
        await until(lambda: call.of(Audio), "the greeting")
        while call.session._samples < call.session._play_end + 8000:
            call.feed(lk.silence(0.2))
            await asyncio.sleep(0)
        call.feed(lk.tone(1.0))
        call.feed(lk.silence(0.6))
        await until(lambda: done(call), "the call's end of turn")
        await call.close()
        await engine.aclose()
    return call, seen


async def test_chat_model_hangs_up_after_its_words() -> None:
    call, seen = await chat_call("hangs-up", {"prompt": "You are Luigi's."})
    assert call.said()[-2:] == ["Glad I could help.", "Goodbye!"]
    assert call.events.index(call.of(Hangup)[0]) > max(
        i for i, e in enumerate(call.events) if isinstance(e, Audio)
    )  # the goodbye is emitted before the hang-up
    tools = [t["function"]["name"] for t in seen[0]["body"]["tools"]]
    assert tools == ["end_call"]  # no transfer target on this route: no transfer tool


async def test_chat_model_that_hangs_up_in_silence_still_says_goodbye() -> None:
    call, _ = await chat_call("hangs-up-silently", {"prompt": "You are Luigi's."})
    assert call.said()[-2:] == ["Thank you for calling.", "Goodbye!"]
    assert call.of(Hangup)


async def test_chat_model_transfers_to_the_routes_target() -> None:
    params = {"prompt": "You are Luigi's.", "transfer_to": "+12125550111"}
    call, seen = await chat_call("transfers", params)
    assert call.of(Transfer) == [Transfer("+12125550111")]
    assert call.said()[-1] == "Let me put you through."
    tools = [t["function"]["name"] for t in seen[0]["body"]["tools"]]
    assert tools == ["end_call", "transfer_call"]
