"""The UA's RFC pieces on their own: registration grants, REFER progress, digest answers.
Hand-picked cases and fuzzing: a peer's header or body never raises past the documented."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.carriers.sip.auth import DigestClient
from gateway.carriers.sip.digest import Credentials
from gateway.carriers.sip.errors import RemoteProtocolError
from gateway.carriers.sip.message import SipMessage
from gateway.carriers.sip.refer import refer_progress
from gateway.carriers.sip.registration import Binding, granted_expires, min_expires

CONTACT = "<sip:overtalk@192.0.2.1:5060>"
TEXT = st.text(st.characters(codec="ascii", exclude_characters="\r\n"), max_size=40)


def response(status: int, *headers: tuple[str, str], body: bytes = b"") -> SipMessage:
    message = SipMessage(status=status, reason="x", body=body)
    for name, value in headers:
        message.add(name, value)
    return message


def notify(event: str, body: bytes) -> SipMessage:
    request = SipMessage(method="NOTIFY", uri="sip:overtalk@192.0.2.1", body=body)
    request.add("Event", event)
    return request


def test_registration_grant_is_our_contacts_expires_else_the_header() -> None:
    ok = response(200, ("Contact", f"{CONTACT};expires=120"), ("Expires", "3600"))
    assert granted_expires(ok, 3600, CONTACT) == 120
    assert granted_expires(response(200, ("Expires", "300")), 3600, CONTACT) == 300
    assert granted_expires(response(200), 3600, CONTACT) == 3600


def test_registration_423_min_expires_is_read_only_when_sane() -> None:
    assert min_expires(response(423, ("Min-Expires", "1800"))) == 1800
    assert min_expires(response(423, ("Min-Expires", "١٢٣"))) is None  # not ASCII digits
    assert min_expires(response(423, ("Min-Expires", "9" * 40))) is None
    assert min_expires(response(423)) is None


def test_registration_binding_keeps_call_id_and_tag_and_raises_cseq() -> None:
    binding = Binding("reg1@host", "tag1", 600)
    first = binding.request("sip:registrar", "sip:bot@registrar", "SIP/2.0/UDP h", CONTACT, "UA")
    binding.again(first, "SIP/2.0/UDP h;branch=z9hG4bK2")
    second = binding.request("sip:registrar", "sip:bot@registrar", "SIP/2.0/UDP h", CONTACT, "UA")
    assert first.get("CSeq") == "2 REGISTER" and second.get("CSeq") == "3 REGISTER"
    assert first.get("Call-ID") == second.get("Call-ID") == "reg1@host"
    assert second.get("Expires") == "600"


def test_refer_progress_reads_the_sipfrag_of_refer_notifies_only() -> None:
    assert refer_progress(notify("refer", b"SIP/2.0 200 OK\r\n")) == 200
    assert refer_progress(notify("refer;id=3", b"SIP/2.0 180 Ringing")) == 180
    assert refer_progress(notify("presence", b"SIP/2.0 200 OK")) is None
    assert refer_progress(notify("refer", b"hello")) is None


def test_digest_client_answers_a_nonce_once_unless_stale() -> None:
    client = DigestClient(Credentials("bot", "secret"), lambda: "cnonce")
    challenge = 'Digest realm="pbx", nonce="n1", qop="auth"'
    request = SipMessage(method="REGISTER", uri="sip:pbx")
    assert client.answer(request, response(401, ("WWW-Authenticate", challenge)))
    assert request.get("Authorization", "").startswith("Digest ")
    assert not client.answer(request, response(401, ("WWW-Authenticate", challenge)))
    stale = challenge + ", stale=true"
    assert client.answer(request, response(407, ("Proxy-Authenticate", stale)))
    assert request.get("Authorization") is None and request.get("Proxy-Authorization")
    assert not DigestClient(None, lambda: "c").answer(request, response(401))


@given(TEXT, TEXT, st.binary(max_size=80))
def test_ua_parts_take_any_header_and_body_without_raising(
    header: str, event: str, body: bytes
) -> None:
    assert isinstance(granted_expires(response(200, ("Expires", header)), 60, CONTACT), int)
    value = min_expires(response(423, ("Min-Expires", header)))
    assert value is None or 0 <= value < 10**9
    status = refer_progress(notify(event, body))
    assert status is None or isinstance(status, int)
    try:
        DigestClient(Credentials("u", "p"), lambda: "c").answer(
            SipMessage(method="INVITE", uri="sip:x"), response(401, ("WWW-Authenticate", header))
        )
    except RemoteProtocolError:
        pass  # the documented refusal of a challenge that does not parse
