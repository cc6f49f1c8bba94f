"""The transaction layer and user agent without sockets: two agents over a fake link, a fake
clock, deterministic loss, and raw requests fed as bytes."""

from __future__ import annotations

import pytest

from gateway.carriers.sip.digest import Challenge, Credentials, authorization
from gateway.carriers.sip.message import SipMessage
from gateway.carriers.sip.transaction import Peer, TransactionLayer, make_response
from gateway.carriers.sip.ua import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallFailed,
    DtmfReceived,
    IncomingCall,
    OfferReceived,
    Registered,
    UaEvent,
)
from tests.sip.uakit import A, B, Link, agent

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\n"
)


def answering(link: Link, *, answer: bool = True) -> None:
    """B answers (or only rings for) every incoming call, synchronously as the app would."""

    def on_event(peer: Peer, event: UaEvent) -> None:
        if peer == B and isinstance(event, IncomingCall):
            if answer:
                link.b.answer(event.call_id, SDP, link.now)
            else:
                link.b.ring(event.call_id, link.now)
        if peer == B and isinstance(event, OfferReceived):
            link.b.answer_offer(event.call_id, SDP, link.now)

    link.on_event = on_event


def call(link: Link) -> str:
    return link.a.invite(
        target="sip:bot@10.0.0.2", from_uri="sip:a@10.0.0.1", to_uri="sip:bot@10.0.0.2",
        sdp=SDP, peer=B, now=link.now,
    )  # fmt: skip


def test_uas_answers_invite_with_trying_contact_and_ack_confirms() -> None:
    link = Link(agent(A), agent(B))
    answering(link)
    call_id = call(link)
    link.run(1.0)
    assert link.sent(B, 100) and link.sent(B, 180) == []
    ((_, ok),) = link.sent(B, 200)
    assert ok.get("Contact") == "<sip:overtalk@10.0.0.2:5060>" and ok.to.tag
    assert link.of(A, CallAnswered) == [CallAnswered(call_id, SDP)]
    assert len(link.of(B, CallConfirmed)) == 1
    assert len(link.sent(A, "ACK")) == 1


def test_uas_retransmits_200_until_ack_arrives() -> None:
    link = Link(agent(A), agent(B))
    answering(link)
    link.drop = lambda sender, msg: msg.method == "ACK" and link.now < 3.0
    call(link)
    link.run(10.0)
    times = [t for t, _ in link.sent(B, 200)]
    assert times == [0.0, 0.5, 1.5, 3.5]  # T1, doubling (13.3.1.4); the 4th is ACKed
    assert len(link.of(B, CallConfirmed)) == 1
    assert len(link.sent(A, "ACK")) == 4  # every retransmitted 2xx is ACKed again


def test_uas_without_ack_gives_up_at_64_t1_and_sends_bye() -> None:
    link = Link(agent(A), agent(B))
    answering(link)
    link.drop = lambda sender, msg: msg.method == "ACK"
    call(link)
    link.run(40.0)
    times = [t for t, _ in link.sent(B, 200)]
    assert times[:6] == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]  # capped at T2 = 4 s
    ((bye_at, _),) = link.sent(B, "BYE")
    assert bye_at == 32.0
    assert [e.reason for e in link.of(B, CallEnded)] == ["no ACK for our 2xx"]


def test_uac_retransmits_invite_on_timer_a_then_fails_408() -> None:
    link = Link(agent(A), agent(B))
    link.drop = lambda sender, msg: sender == A
    call_id = call(link)
    link.run(40.0)
    assert [t for t, _ in link.sent(A, "INVITE")] == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert link.of(A, CallFailed) == [CallFailed(call_id, 408, "Request Timeout")]


def test_uas_cancel_answered_200_and_invite_487() -> None:
    link = Link(agent(A), agent(B))
    answering(link, answer=False)
    call_id = call(link)
    link.run(1.0)
    link.a.hangup(call_id, link.now)
    link.run(5.0)
    assert [m.cseq.method for _, m in link.sent(B, 200)] == ["CANCEL"]
    assert len(link.sent(B, 487)) == 1
    assert link.of(A, CallFailed) == [CallFailed(call_id, 487, "Request Terminated")]
    assert [e.reason for e in link.of(B, CallEnded)] == ["cancelled by the caller"]
    assert len(link.sent(A, "ACK")) == 1  # the 487 is ACKed by the client transaction


def test_uac_cancel_waits_for_a_provisional_response() -> None:
    link = Link(agent(A), agent(B))
    answering(link, answer=False)
    link.drop = lambda sender, msg: sender == B and link.now < 1.0
    call_id = call(link)
    link.a.hangup(call_id, link.now)
    link.run(0.9)
    assert link.sent(A, "CANCEL") == []  # 9.1: not before a provisional response
    link.run(5.0)
    assert len(link.sent(A, "CANCEL")) == 1


@pytest.mark.parametrize("side", [A, B])
def test_bye_from_either_side_ends_both(side: Peer) -> None:
    link = Link(agent(A), agent(B))
    answering(link)
    call_id = call(link)
    link.run(1.0)
    (link.a if side == A else link.b).hangup(call_id, link.now)
    link.run(2.0)
    other = B if side == A else A
    assert [e.by for e in link.of(side, CallEnded)] == ["local"]
    assert [e.by for e in link.of(other, CallEnded)] == ["remote"]
    assert [m.cseq.method for _, m in link.sent(other, 200) if m.cseq.method == "BYE"] == ["BYE"]
    assert not link.a.calls and not link.b.calls


# -- raw requests into one agent ---------------------------------------------------------------


def request(method: str, *, extra: str = "", call_id: str = "raw1", to_tag: str = "",
            body: bytes = b"", via: bool = True, cseq: str = "") -> bytes:  # fmt: skip
    head = f"{method} sip:bot@10.0.0.2 SIP/2.0\r\n"
    if via:
        branch = f"z9hG4bK{call_id}{method}{(cseq or '1').split()[0]}"
        head += f"Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\n"
    head += (
        "From: <sip:a@10.0.0.1>;tag=ft\r\n"
        f"To: <sip:bot@10.0.0.2>{';tag=' + to_tag if to_tag else ''}"
        f"\r\nCall-ID: {call_id}\r\nCSeq: {cseq or '1 ' + method}\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:a@10.0.0.1:5060>\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def feed(ua: object, data: bytes, now: float = 0.0) -> list[SipMessage]:
    ua.receive(data, A, now)  # type: ignore[attr-defined]
    return [SipMessage.parse(d) for d, _ in ua.datagrams_to_send()]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (request("OPTIONS"), 200),
        (request("FOO"), 501),
        (request("REGISTER"), 405),
        (request("INVITE", extra="Require: 100rel\r\n"), 420),
        (request("BYE", to_tag="nope"), 481),
        (request("INFO", to_tag="nope"), 481),
        (request("CANCEL"), 481),
        (request("OPTIONS", cseq="1 INVITE"), 400),
        (request("OPTIONS").replace(b"Call-ID: raw1\r\n", b""), 400),
        (request("OPTIONS").replace(b"SIP/2.0\r\nVia", b"SIP/3.0\r\nVia"), 505),
        (request("OPTIONS").replace(b"From: <sip:a@10.0.0.1>", b"From: <<<"), 400),
        (request("INVITE", extra="Session-Expires: 30\r\n"), 422),
        (request("INVITE", extra="Content-Type: text/html\r\n", body=b"<p>"), 415),
        (request("OPTIONS").replace(b"sip:bot@10.0.0.2", b"mailto:bot@x", 1), 416),
    ],
)
def test_uas_answers_bad_or_unknown_requests(data: bytes, status: int) -> None:
    ua = agent(B)
    responses = feed(ua, data)
    assert [r.status for r in responses if r.status != 100] == [status]
    assert not ua.calls


def test_uas_drops_what_it_cannot_answer() -> None:
    ua = agent(B)
    assert feed(ua, request("OPTIONS", via=False)) == []
    assert feed(ua, b"\x00\x01garbage") == []
    assert feed(ua, request("ACK", extra="Bad Header\r\n")) == []  # an ACK is never answered
    assert ua.bad_messages == 3


def test_uas_options_lists_methods_and_tags_the_response() -> None:
    (ok,) = feed(agent(B), request("OPTIONS"))
    assert "INVITE" in (ok.get("Allow") or "") and ok.get("Accept") == "application/sdp"
    assert ok.to.tag


def test_uas_retransmitted_invite_gets_last_response_and_one_call() -> None:
    ua = agent(B)
    first = feed(ua, request("INVITE", body=SDP, extra="Content-Type: application/sdp\r\n"))
    assert [r.status for r in first] == [100]
    events = ua.events()
    assert [type(e) for e in events] == [IncomingCall]
    ua.ring("raw1", 0.0)
    ua.datagrams_to_send()
    again = feed(ua, request("INVITE", body=SDP, extra="Content-Type: application/sdp\r\n"), 0.4)
    assert [r.status for r in again] == [180]
    assert ua.events() == []


def _established() -> tuple[object, str]:
    ua = agent(B)
    feed(ua, request("INVITE", body=SDP, extra="Content-Type: application/sdp\r\n"
                     "Supported: timer\r\nSession-Expires: 90\r\n"))  # fmt: skip
    (incoming,) = ua.events()
    ua.answer(incoming.call_id, SDP, 0.0)  # type: ignore[union-attr]
    (ok,) = [SipMessage.parse(d) for d, _ in ua.datagrams_to_send()]
    tag = ok.to.tag
    feed(ua, request("ACK", to_tag=tag, cseq="1 ACK"))
    ua.events()
    return ua, tag


def test_uas_session_timer_echoed_and_enforced() -> None:
    ua = agent(B)
    feed(ua, request("INVITE", body=SDP, extra="Content-Type: application/sdp\r\n"
                     "Supported: timer\r\nSession-Expires: 90\r\n"))  # fmt: skip
    (incoming,) = ua.events()
    ua.answer(incoming.call_id, SDP, 0.0)  # type: ignore[union-attr]
    (ok,) = [SipMessage.parse(d) for d, _ in ua.datagrams_to_send()]
    assert ok.get("Session-Expires") == "90;refresher=uac" and ok.get("Require") == "timer"
    feed(ua, request("ACK", to_tag=ok.to.tag, cseq="1 ACK"))
    ua.handle_timer(59.9)
    assert ua.datagrams_to_send() == []
    ua.handle_timer(60.0)  # no refresh by 90 - min(32, 90/3) s: the call is ended
    assert [SipMessage.parse(d).method for d, _ in ua.datagrams_to_send()] == ["BYE"]
    assert [e.reason for e in ua.events() if isinstance(e, CallEnded)] == ["session timer expired"]


def test_uas_reinvite_hold_answered_and_refresh_rearms_timer() -> None:
    ua, tag = _established()
    hold = SDP + b"a=sendonly\r\n"
    feed(ua, request("INVITE", to_tag=tag, cseq="2 INVITE", body=hold,
                     extra="Content-Type: application/sdp\r\n"), 50.0)  # fmt: skip
    (offer,) = ua.events()  # type: ignore[attr-defined]
    assert offer == OfferReceived("raw1", "INVITE", hold)
    ua.answer_offer("raw1", SDP + b"a=recvonly\r\n", 50.0)  # type: ignore[attr-defined]
    (ok,) = [SipMessage.parse(d) for d, _ in ua.datagrams_to_send()]  # type: ignore[attr-defined]
    assert ok.status == 200 and ok.body.endswith(b"a=recvonly\r\n")
    # An older CSeq is out of order; a second offer while one is pending is glare.
    assert [r.status for r in feed(ua, request("INFO", to_tag=tag, cseq="1 INFO"), 50.1)] == [500]
    assert [
        r.status for r in feed(ua, request("INVITE", to_tag=tag, cseq="3 INVITE", body=SDP,
                                           extra="Content-Type: application/sdp\r\n"), 50.2)
    ] == [100, 491]  # fmt: skip
    feed(ua, request("ACK", to_tag=tag, cseq="2 ACK"), 50.3)
    ua.handle_timer(100.0)  # refreshed at 50: not expired at 100
    sent = [SipMessage.parse(d) for d, _ in ua.datagrams_to_send()]  # type: ignore[attr-defined]
    assert [m.status for m in sent] == [491]  # only Timer G re-sending the unACKed 491


def test_uas_info_dtmf_relay() -> None:
    ua, tag = _established()
    feed(ua, request("INFO", to_tag=tag, cseq="2 INFO", body=b"Signal=5\r\nDuration=160\r\n",
                     extra="Content-Type: application/dtmf-relay\r\n"))  # fmt: skip
    assert ua.events() == [DtmfReceived("raw1", "5")]  # type: ignore[attr-defined]


# -- outbound: redirects, failures, registration --------------------------------------------


def test_uac_follows_redirect_and_reports_busy() -> None:
    link = Link(agent(A), agent(B))

    def on_event(peer: Peer, event: UaEvent) -> None:
        if peer == B and isinstance(event, IncomingCall):
            if event.request.uri.startswith("sip:bot@"):
                link.b.redirect(event.call_id, "sip:desk@10.0.0.2", link.now)
            else:
                link.b.reject(event.call_id, 486, link.now)

    link.on_event = on_event
    call_id = call(link)
    link.run(5.0)
    uris = [m.uri for _, m in link.sent(A, "INVITE")]
    assert uris == ["sip:bot@10.0.0.2", "sip:desk@10.0.0.2"]
    assert [m.cseq.seq for _, m in link.sent(A, "INVITE")] == [1, 2]
    assert link.of(A, CallFailed) == [CallFailed(call_id, 486, "Busy Here")]


def test_register_answers_digest_challenge_and_refreshes() -> None:
    ua = agent(A, registrar="sip:10.0.0.9", aor="sip:bot@example.com", register_expires=120,
               credentials=Credentials("bot", "secret"))  # fmt: skip
    registrar = Peer("udp", "10.0.0.9", 5060)
    layer = TransactionLayer()
    challenge = 'Digest realm="example.com", nonce="n1", qop="auth", algorithm=MD5'
    seen: list[SipMessage] = []

    def serve(now: float) -> None:
        for data, to in ua.datagrams_to_send():
            assert to == registrar
            req = SipMessage.parse(data)
            seen.append(req)
            auth = req.get("Authorization")
            if auth is None:
                resp = make_response(req, 401, "Unauthorized")
                resp.add("WWW-Authenticate", challenge)
            else:
                fields = dict(
                    p.strip().split("=", 1) for p in auth.removeprefix("Digest ").split(",")
                )
                expected = authorization(
                    Challenge.parse(challenge), Credentials("bot", "secret"), method="REGISTER",
                    uri=req.uri, cnonce=fields["cnonce"].strip('"'),
                    nonce_count=int(fields["nc"], 16),
                )  # fmt: skip
                assert auth == expected
                resp = make_response(req, 200, "OK")
                resp.add("Contact", "<sip:overtalk@10.0.0.1:5060>;expires=120")
            resp.set("To", resp.get("To") + ";tag=r")  # type: ignore[operator]
            ua.receive(resp.serialize(), registrar, now)
        layer.datagrams_to_send()

    ua.register(registrar, 0.0)
    serve(0.0)
    serve(0.0)
    assert [e for e in ua.events() if isinstance(e, Registered)] == [Registered(120)]
    assert [m.cseq.seq for m in seen] == [1, 2] and seen[0].call_id == seen[1].call_id
    ua.handle_timer(59.0)
    assert ua.datagrams_to_send() == []
    ua.handle_timer(60.0)  # refreshed halfway through a short registration
    serve(60.0)
    assert [m.cseq.seq for m in seen][2] == 3
