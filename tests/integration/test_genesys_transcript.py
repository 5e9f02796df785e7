"""Transcripts of a guest session (devtools/genesys_transcript.py): recorded as shapes that never carry a value,
whatever a peer sends, and replayed by the emulator as the frames a real organisation sent."""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from devtools import check_genesys, genesys_emulator, run_local
from devtools.genesys_emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_DEPLOYMENT_ID, GenesysEmulator
from devtools.genesys_transcript import (
    REPLAY_HMAC_SECRET,
    Replay,
    conform,
    dumps,
    frame_shape,
    jwt_shape,
    shape_of,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "genesys" / "emulator-session.json"
ORIGIN = "https://www.example.com"
WAIT = 30.0  # bounds a broken test only: every answer arrives within milliseconds, or seconds on a busy machine
CANARY = "c4nary-V4LUE-never-in-a-shape"
# Every string a shape may hold besides the names of fields it was given.
VOCABULARY = {
    *("string", "integer", "number", "boolean", "null", "deep", "other", "array", "object", "otherFields"),
    *("response", "message", "echoed", "absent", "not-json", "binary", "type", "class", "code", "tracingId"),
    *("body", "extra", "frame"),
}


@pytest.fixture(scope="module")
def genesys() -> Iterator[GenesysEmulator]:
    with GenesysEmulator().start() as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh(genesys: GenesysEmulator) -> None:
    genesys.reset()


def record(genesys: GenesysEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, dict[str, Any]]:
    """``devtools.check_genesys --session`` against ``genesys``: its status and the transcript it wrote."""
    credentials = tmp_path / "client.json"
    credentials.write_text(json.dumps({"clientId": DEMO_CLIENT_ID, "clientSecret": DEMO_CLIENT_SECRET}))
    monkeypatch.setenv("GENESYS_OAUTH_BASE_URL", genesys.base_url)
    monkeypatch.setenv("GENESYS_API_BASE_URL", genesys.base_url)
    monkeypatch.setenv("GENESYS_WEBMESSAGING_BASE_URL", genesys.webmessaging_url)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")  # so that it is restored after --session sets WARNING
    path = tmp_path / f"transcript-{uuid.uuid4().hex[:8]}.json"
    status = check_genesys.main(
        [
            *("--credentials", str(credentials), "--region", "mypurecloud.ie"),
            *("--deployment-id", DEMO_DEPLOYMENT_ID, "--origin", ORIGIN, "--session", "--transcript", str(path)),
        ]
    )
    return status, json.loads(path.read_text())


def without_date(transcript: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in transcript.items() if key != "recorded"}


# -- the committed example -----------------------------------------------------------------------------------


def test_the_committed_example_is_what_the_tool_records_from_the_emulator(
    genesys: GenesysEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the emulator changes what it answers, record the file again, with the tool, from the repository:
    ``python -m devtools.genesys_emulator --port 18100 --webmessaging-port 18180`` in one shell, then
    ``GENESYS_OAUTH_BASE_URL=http://127.0.0.1:18100 GENESYS_API_BASE_URL=http://127.0.0.1:18100
    GENESYS_WEBMESSAGING_BASE_URL=ws://127.0.0.1:18180 .venv/bin/python -m devtools.check_genesys --credentials
    <{"clientId": "demo-client-id", "clientSecret": "demo-client-secret"}> --region mypurecloud.ie --deployment-id
    5f3a2c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b --origin https://www.example.com --session --transcript
    tests/fixtures/genesys/emulator-session.json``."""
    status, fresh = record(genesys, tmp_path, monkeypatch)
    assert status == 0
    assert without_date(fresh) == without_date(json.loads(FIXTURE.read_text()))
    assert FIXTURE.read_text() == dumps(json.loads(FIXTURE.read_text())), "the tool's own formatting"


# -- replay --------------------------------------------------------------------------------------------------


def ask(ws: ClientConnection, action: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    tracing_id = str(uuid.uuid4())
    ws.send(json.dumps({"action": action, **fields, "tracingId": tracing_id}))
    frame: dict[str, Any] = json.loads(ws.recv(timeout=WAIT))
    return tracing_id, frame


def test_an_emulator_replaying_a_hand_edited_transcript_answers_in_its_shapes(
    genesys: GenesysEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    genesys.tag_answers = True  # recorded tagged, so that the edit below has something to take away
    _, transcript = record(genesys, tmp_path, monkeypatch)
    assert {exchange["received"][exchange["answer"]]["tracingId"] for exchange in transcript["exchanges"]} == {"echoed"}
    for exchange in transcript["exchanges"]:
        if exchange["sent"] != "echo":
            exchange["received"][exchange["answer"]]["tracingId"] = "absent"
        if exchange["sent"] == "getJwt":
            exchange["received"][exchange["answer"]]["body"]["object"]["exp"] = "number"
            exchange["jwt"]["alg"] = "HS256"
            exchange["jwt"]["claims"].remove("exp")
    edited = tmp_path / "edited.json"
    edited.write_text(dumps(transcript))

    with GenesysEmulator(transcript=edited).start() as replaying:
        replaying.tag_answers = True  # the transcript's habit wins over the emulator's own
        url = f"{replaying.webmessaging_url}/v1?deploymentId={DEMO_DEPLOYMENT_ID}"
        token = str(uuid.uuid4())
        with connect(url, origin=Origin(ORIGIN), open_timeout=WAIT) as ws:
            _, session = ask(ws, "configureSession", deploymentId=DEMO_DEPLOYMENT_ID, token=token)
            _, answer = ask(ws, "getJwt", token=token)
            echo_id, echo = ask(ws, "echo", token=token, message={"type": "Text", "text": "ping"})
        assert session["class"] == "SessionResponse" and "tracingId" not in session
        assert session["body"]["connected"] is True and session["body"]["newSession"] is True
        assert answer["class"] == "JwtResponse" and "tracingId" not in answer
        exp = answer["body"]["exp"]
        assert isinstance(exp, float) and exp.is_integer()
        guest_jwt = answer["body"]["jwt"]
        assert jwt.get_unverified_header(guest_jwt) == {"alg": "HS256", "typ": "JWT", "kid": replaying.kid}
        claims = jwt.decode(guest_jwt, REPLAY_HMAC_SECRET, algorithms=["HS256"], options={"verify_aud": False})
        assert "exp" not in claims and sorted(claims) == transcript["exchanges"][1]["jwt"]["claims"]
        assert echo["class"] == "StructuredMessage" and echo["tracingId"] == echo_id
        # The history call finds the session by the JWT handed out, whatever its shape.
        history = urllib3.request(
            "GET",
            f"{replaying.base_url}/api/v2/webmessaging/messages",
            headers={"Authorization": f"Bearer {guest_jwt}"},
        )
        assert history.status == 200

        # Recorded again from the replaying emulator, it is the edited transcript; the service takes it (notes only).
        capsys.readouterr()
        status, again = record(replaying, tmp_path, monkeypatch)
    assert without_date(again) == without_date(transcript)
    summary = capsys.readouterr().err.splitlines()[-1]
    assert status == 0 and summary.startswith("OK   session transcript in ")
    for note in ("no tracingId on configureSession, getJwt, closeSession", "JWT alg HS256", "no exp claim"):
        assert note in summary


def transcript_of(*exchanges: dict[str, Any], jwt_record: dict[str, Any] | None = None) -> Replay:
    if jwt_record is not None:
        exchanges = tuple(
            {**exchange, "jwt": jwt_record} if exchange["sent"] == "getJwt" else exchange for exchange in exchanges
        )
    return Replay({"format": 1, "exchanges": list(exchanges)})


def shape(cls: str, body: Any, tracing: str = "absent", kind: str = "response", code: int = 200) -> dict[str, Any]:
    return {"type": kind, "class": cls, "code": code, "tracingId": tracing, "body": body}


SESSION_BODY = {"object": {"connected": "boolean", "newSession": "boolean", "region": "string"}}
NORMAL_SESSION = {
    "type": "response",
    "class": "SessionResponse",
    "code": 200,
    "tracingId": "t-1",
    "body": {"connected": True, "newSession": True, "readOnly": False, "durationSeconds": 5},
}


def test_replay_sends_recorded_frames_of_other_classes_before_the_reshaped_answer() -> None:
    presence = shape(
        "StructuredMessage", {"object": {"events": {"array": {"object": {"eventType": "string"}}}}}, kind="message"
    )
    replay = transcript_of(
        {"sent": "configureSession", "received": [presence, shape("SessionResponse", SESSION_BODY)], "answer": 1}
    )
    first, answer = replay.frames("configureSession", [dict(NORMAL_SESSION)], "t-1")
    assert first == {
        "type": "message",
        "class": "StructuredMessage",
        "code": 200,
        "body": {"events": [{"eventType": "replayed"}]},
    }
    # Only the recorded fields, a missing one synthesised, no tracingId as recorded.
    assert answer == {
        "type": "response",
        "class": "SessionResponse",
        "code": 200,
        "body": {"connected": True, "newSession": True, "region": "replayed"},
    }


def test_replay_keeps_an_error_answer_with_the_recorded_tracing_habit() -> None:
    replay = transcript_of({"sent": "getJwt", "received": [shape("JwtResponse", {"object": {}}, "other")], "answer": 0})
    error = {"type": "response", "class": "string", "code": 4007, "body": "Session not found", "tracingId": "t-2"}
    [answer] = replay.frames("getJwt", [dict(error)], "t-2")
    assert answer["class"] == "string" and answer["code"] == 4007 and answer["body"] == "Session not found"
    assert answer["tracingId"] not in ("t-2", None)  # "other": an id, not the request's


def test_replay_drops_an_answer_the_recorded_genesys_never_gave_and_passes_unrecorded_actions() -> None:
    replay = transcript_of({"sent": "closeSession", "received": [], "answer": None})
    assert replay.frames("closeSession", [dict(NORMAL_SESSION)], "t-1") == []
    assert replay.frames("echo", [dict(NORMAL_SESSION)], "t-1") == [NORMAL_SESSION]


@pytest.mark.parametrize(
    ("value", "recorded", "replayed"),
    [
        (1796410343, "number", 1796410343.0),
        (1796410343.0, "integer", 1796410343),
        ("42", "integer", 42),
        ("--5", "integer", 0),
        (math.inf, "integer", 0),
        (True, "string", "true"),
        (7, "string", "7"),
        ("true", "boolean", True),
        ([1, 2], {"array": "string"}, ["1", "2"]),
        ({"a": 1, "b": 2}, {"object": {"a": "string"}, "otherFields": 1}, {"a": "1", "~1": "replayed"}),
        ({"a": 1}, "null", None),
        ("x", "deep", {}),
    ],
)
def test_conform_converts_to_the_recorded_type_or_synthesises_one(value: Any, recorded: Any, replayed: Any) -> None:
    assert conform(value, recorded) == replayed


def jwt_exchange(record: dict[str, Any]) -> Replay:
    return transcript_of({"sent": "getJwt", "received": [], "answer": None}, jwt_record=record)


def test_replayed_jwts_take_the_recorded_alg_typ_and_claim_names(genesys: GenesysEmulator) -> None:
    claims = {"sub": "guest", "exp": 2000000000, "iss": "not recorded"}
    record = {"typ": None, "headerFields": ["alg", "kid"], "claims": ["exp", "nbf", "sub", "role"], "segments": 3}
    none = jwt_exchange({**record, "alg": "none"}).jwt(claims, genesys.signing_key, {"kid": "k"})
    assert jwt.get_unverified_header(none) == {"alg": "none", "kid": "k"}
    decoded = jwt.decode(none, options={"verify_signature": False})
    assert decoded["sub"] == "guest" and decoded["exp"] == 2000000000 and decoded["role"] == "replayed"
    assert isinstance(decoded["nbf"], int) and "iss" not in decoded
    # An algorithm the emulator holds no key for: RS256 with its RSA key stands in.
    es = jwt_exchange({**record, "alg": "ES256", "typ": "JWT"}).jwt(claims, genesys.signing_key)
    assert jwt.get_unverified_header(es)["alg"] == "RS256"
    jwt.decode(es, genesys.signing_key.public_key(), algorithms=["RS256"])
    ps = jwt_exchange({**record, "alg": "PS384", "otherClaims": 2}).jwt(claims, genesys.signing_key)
    assert {"~1", "~2"} <= set(jwt.decode(ps, genesys.signing_key.public_key(), algorithms=["PS384"]))


def test_an_opaque_recorded_token_replays_as_an_opaque_one(genesys: GenesysEmulator) -> None:
    opaque = jwt_exchange({"segments": 1}).jwt({"exp": 1}, genesys.signing_key)
    assert "." not in opaque and len(opaque) >= 24 and jwt_shape(opaque) == {"segments": 1}
    assert jwt_exchange({"segments": 5}).jwt({}, genesys.signing_key).count(".") == 4


def test_a_bad_transcript_is_refused_by_the_emulator_and_make_run(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 2}')
    with pytest.raises(ValueError, match="is not a transcript of format 1"):
        GenesysEmulator(transcript=bad)
    with pytest.raises(SystemExit) as exit_info:
        genesys_emulator.main(["--port", "0", "--replay", str(tmp_path / "missing.json")])
    assert exit_info.value.code == 2
    ports = [argument for port in run_local.PORTS for argument in (port.option, "0")]
    assert run_local.main([*ports, "--genesys-transcript", str(bad)]) == 2


# -- recording: hostile input ----------------------------------------------------------------------------------


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=40,
)


def names_in(value: Any) -> set[str]:
    """The object keys of a JSON value, at any depth: the only strings of a value that its shape may hold."""
    found: set[str] = set()
    if isinstance(value, dict):
        found.update(key for key in value if isinstance(key, str))
        for item in value.values():
            found |= names_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= names_in(item)
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON)
def test_a_shape_holds_nothing_but_the_vocabulary_and_field_names(value: Any) -> None:
    held = set(strings_in(shape_of(value)))
    assert held <= VOCABULARY | names_in(value)
    json.dumps(shape_of(value))  # always JSON


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.text() | st.binary(), tracing_id=st.none() | st.text(max_size=10))
def test_frame_shape_and_jwt_shape_take_any_text_or_bytes(raw: str | bytes, tracing_id: str | None) -> None:
    frame = frame_shape(raw, tracing_id)
    assert set(frame) >= {"type", "class", "code", "tracingId", "body"}
    assert jwt_shape(raw)["segments"] >= 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelope=st.dictionaries(st.sampled_from(["type", "class", "code", "tracingId", "body", "x"]), JSON))
def test_a_frame_shape_holds_no_value_of_the_frame(envelope: dict[str, Any]) -> None:
    frame = frame_shape(json.dumps(envelope), "sent-id")
    # type and class are kept from a closed set or a pattern; the rest is vocabulary, codes and field names.
    held = set(strings_in({key: value for key, value in frame.items() if key not in ("type", "class")}))
    assert held <= VOCABULARY | names_in(envelope) | {"x"}
    assert frame["type"] in ("response", "message", "other")
    assert frame["code"] is None or isinstance(frame["code"], int)


def canary_frame() -> dict[str, Any]:
    return {
        "type": CANARY,
        "class": f"Session Response {CANARY}",
        "code": 10**12,
        "tracingId": CANARY,
        "body": {"jwt": CANARY, "text": CANARY * 1000, "nested": [{"deeper": [CANARY, 1.5]}], CANARY: CANARY},
        "timestamp": CANARY,
    }


def test_a_frame_full_of_values_keeps_none_of_them() -> None:
    shape_text = json.dumps(frame_shape(json.dumps(canary_frame()), "another id"))
    assert "c4nary" not in shape_text.lower()
    assert json.loads(shape_text) == {
        "type": "other",
        "class": "other",
        "code": None,
        "tracingId": "other",
        "body": {
            "object": {
                "jwt": "string",
                "nested": {"array": {"object": {"deeper": {"array": "string"}}}},
                "text": "string",
            },
            "otherFields": 1,
        },
        "extra": {"object": {"timestamp": "string"}},
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("x" * 10_000_000, {"frame": "not-json"}),
        (json.dumps("x" * 10_000_000), {"frame": "string"}),
        ("[" * 100_000 + "]" * 100_000, {"frame": "not-json"}),  # too deep for json: still no exception
        ("NaN", {"frame": "number"}),
        ("", {"frame": "not-json"}),
        (b"\x00\xff{}", {"frame": "binary"}),
        ('{"type": "response", "class": "JwtResponse", "code": true, "tracingId": null}', {"code": None}),
        ('{"type": "message", "class": "x", "code": 4029, "tracingId": "sent-id"}', {"tracingId": "echoed"}),
        ('{"class": "' + "A" * 65 + '", "code": -1}', {"class": "other", "code": None}),
    ],
)
def test_hostile_frames_are_shapes(raw: str | bytes, expected: dict[str, Any]) -> None:
    frame = frame_shape(raw, "sent-id")
    assert {key: frame[key] for key in expected} == expected


def test_field_names_are_kept_only_when_they_look_like_names() -> None:
    odd = {"ok_1": 1, "a b": 1, "": 1, "1x": 1, "x" * 65: 1, "é": 1, "__proto__": 1, "a-b": 1, "a.b": 1}
    assert shape_of(odd) == {"object": {"ok_1": "integer"}, "otherFields": 8}
    many = shape_of({f"f{number}": number for number in range(500)})
    assert isinstance(many, dict) and len(many["object"]) == 100 and many["otherFields"] == 400


def test_nesting_is_recorded_to_a_depth_then_cut() -> None:
    value: Any = CANARY
    for _ in range(10_000):
        value = {"a": [value]}
    text = json.dumps(shape_of(value))
    assert text.count("array") == 4 and '"deep"' in text and "c4nary" not in text


def b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, {"segments": 0}),
        (12, {"segments": 0}),
        ("", {"segments": 1}),
        ("..", {"segments": 3}),
        ("." * 5000, {"segments": 5001}),
        ("opaque-token-of-some-kind", {"segments": 1}),
        (f"{b64([1, 2])}.{b64({'sub': CANARY})}.sig", {"segments": 3}),
        (f"{b64(b'\xff\xfe')}.x.y", {"segments": 3}),
        (
            f"{b64({'alg': 'RS256; DROP', 'typ': 7, 'x-y': CANARY})}.{b64({'sub': CANARY, CANARY: 1})}.sig",
            {
                "alg": "other",
                "typ": "other",
                "segments": 3,
                "headerFields": ["alg", "typ"],
                "otherHeaderFields": 1,
                "claims": ["sub"],
                "otherClaims": 1,
            },
        ),
        (
            f"{b64({'alg': 'HS256'})}.not-json.sig",
            {"alg": "HS256", "typ": None, "segments": 3, "headerFields": ["alg"]},
        ),
        (f"{b64({'alg': 'RS256'})}.{b64({'a': 1})}." + "s" * 100_000, {"segments": 3}),
    ],
)
def test_jwt_shapes_of_hostile_tokens(token: object, expected: dict[str, Any]) -> None:
    found = jwt_shape(token)
    assert found == expected
    assert "c4nary" not in json.dumps(found).lower()


def test_a_token_used_as_a_field_name_is_not_recorded_as_a_name() -> None:
    token = str(uuid.uuid4())
    keys = {token.upper().replace("-", ""): 1, "A" + token.replace("-", "")[:19]: 2, token[:8]: 3, "connected": True}
    shape = shape_of({"nested": keys})
    text = json.dumps(shape)
    assert token[:8] not in text.lower() and "connected" in text
    assert shape == {"object": {"nested": {"object": {"connected": "boolean"}, "otherFields": 3}}}
