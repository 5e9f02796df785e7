"""Transcripts of one Web Messaging guest session: what came back from Genesys, as shapes and never as values.

``devtools.check_genesys --session`` records one against a real organisation (the recording half:
``shape_of``, ``frame_shape``, ``jwt_shape``); the emulator replays one (``Replay``), so that the service and the
widget can be tested against the frames a real organisation sends rather than against the SDKs' test fixtures.

Format 1, a JSON object::

    {"format": 1,
     "recorded": "2026-12-04",                       # the UTC date, no time
     "region": "mypurecloud.ie",                     # or "emulator" (a loopback host), or "other" (any other host)
     "handshake": {"status": 101, "headers": ["connection", "date", ...]},   # header names, lower-cased, sorted
     "exchanges": [
        {"sent": "configureSession", "received": [<frame>, ...], "answer": 0},
        {"sent": "getJwt", "received": [...], "answer": 0,
         "jwt": {"alg": "RS256", "typ": "JWT", "headerFields": ["alg", "kid", "typ"], "claims": ["exp", ...],
                 "segments": 3}},
        {"sent": "echo", ...}, {"sent": "closeSession", ...}],
     "afterClose": [<frame>, ...],                   # frames received in a short wait after closeSession's answer
     "history": {"status": 200, "body": <shape>},   # GET /api/v2/webmessaging/messages with the JWT; null: no JWT
     "closed": {"by": "genesys" | "checker", "code": 1000 | null}}   # who closed the socket; Genesys' close code

``answer`` is the index in ``received`` of the frame taken as the answer to what was sent, null when none came
before the wait ran out; the frames before it arrived first (presence events, answers to others). The answer
is the first frame of class SessionResponse, JwtResponse, string or TooManyRequestsErrorMessage, or (to an echo)
a StructuredMessage, that carries the request's tracingId or none. A refused handshake has no exchanges; a
redirected one (the function refuses those) adds ``"redirected": true`` and has none either. A history read that
failed on the network is ``{"status": null, "error": <the client library's exception class>}``; a body over
1 MiB is "too-large". ``exchanges`` stops early, and ``closed.by`` is "genesys", when Genesys closed the socket.

A frame is ``{"type", "class", "code", "tracingId", "body"}``:

* ``type``: "response" or "message" as the frame says, anything else "other";
* ``class``: the frame's class when it matches ``^[A-Za-z]{1,64}$``, else "other";
* ``code``: an integer code from 0 to 99999, else null (absent, not an integer, or out of that range);
* ``tracingId``: "echoed" (the one sent with the request the exchange is about; for ``afterClose``,
  closeSession's), "absent", or "other" (any other value, null included);
* ``body``: the shape of the body, or "absent" when the frame has no ``body``;
* ``extra`` (only when present): the object shape of the frame's other top-level fields;
* ``frame`` (only for a frame that is not a JSON object): "binary", "not-json", or the shape of its JSON value.

A shape of a value is "string" | "integer" | "number" | "boolean" | "null" | {"array": <shape of the first element,
or null when empty>} | {"object": {name: shape}}. Object field names are kept only when they match
``^[A-Za-z][A-Za-z0-9_]{0,63}$`` and do not have the digits or length of an id or a token (``is_name``: a session
token used as a key is not a name), at most ``MAX_FIELDS`` of them (sorted); the others are counted beside the
fields as ``"otherFields": n``. Nesting deeper than ``MAX_DEPTH`` is recorded as "deep", and not looked into. The
history body may also be "empty" or "not-json".

A JWT is ``{"segments": n}`` (the number of dot-separated parts) and, when its first segment is a base64url JSON
object, ``alg`` and ``typ`` (kept when they match ``^[A-Za-z0-9+._-]{1,20}$``, "other" when they do not, null
when absent) and ``headerFields``; when its second is, ``claims``: names filtered as object fields are, the
others counted as ``otherHeaderFields`` / ``otherClaims``. An opaque token is ``{"segments": n}`` alone.

Nothing else from Genesys is kept: no value, no text, no id, no token, no message, no header value. Every
recording function takes anything (a huge string, bytes, a deep structure, garbage) and never raises; a frame
too deeply nested for Python's json is "not-json", a token over 64 KiB is ``{"segments": n}`` alone.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import secrets
import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import jwt
from jwt.utils import base64url_decode

FORMAT: Final = 1
MAX_DEPTH: Final = 8
MAX_FIELDS: Final = 100
MAX_CODE: Final = 99999
# Decoding more than this is not reading a JWT any more; such a token is recorded by its segments alone.
MAX_JWT_CHARS: Final = 1 << 16

NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
CLASS: Final = re.compile(r"[A-Za-z]{1,64}")
ALG: Final = re.compile(r"[A-Za-z0-9+._-]{1,20}")
HEADER_NAME: Final = re.compile(r"[A-Za-z0-9-]{1,64}")

FRAME_TYPES: Final = ("response", "message")
ENVELOPE: Final = ("type", "class", "code", "tracingId", "body")
# The classes that answer a request; a StructuredMessage answers an echo when it carries the request's tracingId.
ANSWER_CLASSES: Final = frozenset({"SessionResponse", "JwtResponse", "string", "TooManyRequestsErrorMessage"})
ERROR_CLASSES: Final = frozenset({"string", "TooManyRequestsErrorMessage"})
ACTIONS: Final = ("configureSession", "getJwt", "echo", "closeSession")

Shape = str | dict[str, Any]


# -- recording -----------------------------------------------------------------------------------------


def shape_of(value: object, depth: int = 0) -> Shape:
    """The shape of a JSON value (see the module's docstring); anything not JSON-like is "other"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            return "deep"
        return {"array": shape_of(value[0], depth + 1) if value else None}
    if isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            return "deep"
        return _fields_shape(value, depth)
    return "other"


def _fields_shape(value: Mapping[Any, Any], depth: int, other: str = "otherFields") -> dict[str, Any]:
    names, others = _names(value)
    fields = {name: shape_of(value[name], depth + 1) for name in names}
    shape: dict[str, Any] = {"object": fields}
    if others:
        shape[other] = others
    return shape


def _names(keys: Iterable[object]) -> tuple[list[str], int]:
    """The keys that are names, sorted and at most MAX_FIELDS, and how many others there were."""
    keys = list(keys)
    names = sorted(key for key in keys if isinstance(key, str) and is_name(key))[:MAX_FIELDS]
    return names, len(keys) - len(names)


def is_name(text: str, pattern: re.Pattern[str] = NAME) -> bool:
    """Whether ``text`` reads as a field or header name rather than a value put where a name goes (a session
    token as a key, say): it matches ``pattern``, and has neither the digits nor the length of an id or a token
    (4 digits or more, 20 characters or more with a digit, 32 or more, or 8 hex digits or more with a digit)."""
    digits = sum(char.isdigit() for char in text)
    hexadecimal = re.fullmatch(r"[0-9A-Fa-f-]{8,}", text) is not None and digits > 0
    looks_like_a_value = digits >= 4 or (len(text) >= 20 and digits) or len(text) >= 32 or hexadecimal
    return pattern.fullmatch(text) is not None and not looks_like_a_value


def frame_shape(frame: object, sent_tracing_id: str | None) -> dict[str, Any]:
    """The shape of one received frame: its raw text or bytes, or its parsed JSON value."""
    shape: dict[str, Any] = {"type": "other", "class": "other", "code": None, "tracingId": "absent", "body": "absent"}
    if isinstance(frame, bytes | bytearray | memoryview):
        shape["frame"] = "binary"
        return shape
    if isinstance(frame, str):
        try:
            frame = json.loads(frame)
        except (ValueError, RecursionError):
            shape["frame"] = "not-json"
            return shape
    if not isinstance(frame, Mapping):
        shape["frame"] = shape_of(frame)
        return shape
    kind, cls, code = frame.get("type"), frame.get("class"), frame.get("code")
    if kind in FRAME_TYPES:
        shape["type"] = kind
    if isinstance(cls, str) and CLASS.fullmatch(cls):
        shape["class"] = cls
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= MAX_CODE:
        shape["code"] = code
    if "tracingId" in frame:
        echoed = sent_tracing_id is not None and frame["tracingId"] == sent_tracing_id
        shape["tracingId"] = "echoed" if echoed else "other"
    if "body" in frame:
        shape["body"] = shape_of(frame["body"])
    extra = {key: value for key, value in frame.items() if key not in ENVELOPE}
    if extra:
        shape["extra"] = _fields_shape(extra, 0)
    return shape


def jwt_shape(token: object) -> dict[str, Any]:
    """The shape of a JWT: its segments, its header's alg and typ, the names of its header fields and claims."""
    if not isinstance(token, str):
        return {"segments": 0}
    segments = token.split(".", 64)
    shape: dict[str, Any] = {"segments": token.count(".") + 1}
    if len(token) > MAX_JWT_CHARS:
        return shape
    header = _segment_json(segments[0])
    if header is not None:
        shape = {"alg": _alg(header, "alg"), "typ": _alg(header, "typ"), **shape}
        shape["headerFields"], others = _names(header)
        if others:
            shape["otherHeaderFields"] = others
    claims = _segment_json(segments[1]) if len(segments) > 1 and header is not None else None
    if claims is not None:
        shape["claims"], others = _names(claims)
        if others:
            shape["otherClaims"] = others
    return shape


def _segment_json(segment: str) -> dict[str, Any] | None:
    try:
        value = json.loads(base64url_decode(segment))
    except (ValueError, RecursionError):  # bad base64, not UTF-8, not JSON (binascii.Error is a ValueError)
        return None
    return value if isinstance(value, dict) else None


def _alg(header: Mapping[str, Any], name: str) -> str | None:
    if name not in header:
        return None
    value = header[name]
    return value if isinstance(value, str) and ALG.fullmatch(value) else "other"


def header_names(names: Iterable[object]) -> list[str]:
    """HTTP header names, lower-cased, deduplicated and sorted; a name no server would send becomes "other"."""
    return sorted({name.lower() if isinstance(name, str) and is_name(name, HEADER_NAME) else "other" for name in names})


def body_shape(data: bytes) -> Shape:
    """The shape of an HTTP body expected to be JSON."""
    if not data:
        return "empty"
    try:
        return shape_of(json.loads(data))
    except (ValueError, RecursionError):
        return "not-json"


def recorded_on() -> str:
    return datetime.datetime.now(datetime.UTC).date().isoformat()


def dumps(transcript: Mapping[str, Any]) -> str:
    return json.dumps(transcript, indent=2) + "\n"


def load(path: Path) -> dict[str, Any]:
    """A transcript file, checked enough to be replayed; ValueError says what is wrong with it."""
    try:
        transcript = json.loads(path.read_bytes())
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror})") from None
    except (ValueError, RecursionError):
        raise ValueError(f"{path} is not JSON") from None
    if not isinstance(transcript, dict) or transcript.get("format") != FORMAT:
        raise ValueError(f"{path} is not a transcript of format {FORMAT}")
    exchanges = transcript.get("exchanges")
    if not isinstance(exchanges, list) or not all(
        isinstance(exchange, dict) and isinstance(exchange.get("received"), list) for exchange in exchanges
    ):
        raise ValueError(f"{path}: exchanges must be a list of objects with a received list")
    return transcript


# -- comparing with what the service assumes --------------------------------------------------------------


def lifetime_of(exp: object, now: float | None = None) -> str:
    """How far away a JwtResponse's ``exp`` is, coarsely (the service refuses more than a day): "past", "under an
    hour", "under a day", "over a day", or "not a number". A bucket, not the value."""
    if not isinstance(exp, int | float) or isinstance(exp, bool) or not math.isfinite(exp):
        return "not a number"
    left = exp - (time.time() if now is None else now)
    if left <= 0:
        return "past"
    return "under an hour" if left < 3600 else "under a day" if left <= 86400 else "over a day"


def differences(transcript: Mapping[str, Any], algorithms: Collection[str]) -> list[tuple[str, bool]]:
    """What the transcript shows that the service (guest_api.py, verify.py) does not expect or would refuse:
    (phrase, whether it breaks every request). ``algorithms``: the JWT algorithms verify.py accepts with a JWKS.
    The service reads frames by class and takes answers with or without its tracingId, and without a JWKS hands
    the session JWT out as Genesys answered it; what only matters with GENESYS_JWKS_URL is said so."""
    found: list[tuple[str, bool]] = []
    handshake = transcript.get("handshake") or {}
    if handshake.get("status") != 101:
        return [(f"the handshake was answered {handshake.get('status')}, not 101", True)]
    if handshake.get("redirected"):
        return [("the handshake was redirected to another host (the function refuses that)", True)]
    exchanges = {exchange.get("sent"): exchange for exchange in transcript.get("exchanges", [])}
    untagged = []
    for action, expected in (
        ("configureSession", "SessionResponse"),
        ("getJwt", "JwtResponse"),
        ("echo", "StructuredMessage"),
        ("closeSession", "SessionResponse"),
    ):
        exchange = exchanges.get(action)
        answer = _answer(exchange)
        fatal = action in ("configureSession", "getJwt")
        if answer is None:
            found.append((f"{action} got no answer", fatal))
            continue
        if answer["class"] != expected:
            found.append((f"{action} was answered {answer['class']} {answer['code']}, not {expected}", fatal))
            continue
        if answer["tracingId"] == "other":
            found.append((f"{action}'s answer carries another tracingId", action != "echo"))
        elif answer["tracingId"] != "echoed":
            untagged.append(action)
        body = answer["body"]
        fields = body.get("object", {}) if isinstance(body, dict) else {}
        if action == "configureSession":
            for name in ("connected", "newSession", "readOnly"):
                if fields.get(name) != "boolean":
                    found.append((f"SessionResponse {name} is {fields.get(name, 'absent')}, not boolean", False))
        if action == "getJwt":
            if fields.get("jwt") != "string":
                found.append((f"JwtResponse jwt is {fields.get('jwt', 'absent')}, not string", True))
            if fields.get("exp") not in ("integer", "number"):
                found.append((f"JwtResponse exp is {fields.get('exp', 'absent')}, not a number", True))
    if untagged:
        every = len(untagged) == sum(1 for action in ACTIONS if _answer(exchanges.get(action)) is not None)
        found.append(("answers carry no tracingId" if every else f"no tracingId on {', '.join(untagged)}", False))
    lifetime = exchanges.get("getJwt", {}).get("lifetime")
    if lifetime in ("past", "over a day"):
        found.append((f"the JWT's exp is {lifetime} away (the service refuses it)", True))
    token = exchanges.get("getJwt", {}).get("jwt")
    if isinstance(token, dict):
        alg = token.get("alg")
        if "claims" not in token:
            found.append(
                (f"the JWT is opaque ({token.get('segments')} segments): GENESYS_JWKS_URL would refuse it", False)
            )
        else:
            if alg not in algorithms:
                found.append((f"JWT alg {alg}: GENESYS_JWKS_URL would refuse it", False))
            if "exp" not in token["claims"]:
                found.append(("the JWT has no exp claim: GENESYS_JWKS_URL would refuse it", False))
    history = transcript.get("history")
    if history is None:
        found.append(("no history read (no JWT)", False))
    elif history.get("status") != 200:
        found.append((f"the history answered {history.get('status')}", False))
    return found


def _answer(exchange: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not exchange or not isinstance(exchange.get("answer"), int):
        return None
    received = exchange.get("received", [])
    index = exchange["answer"]
    return received[index] if 0 <= index < len(received) else None


# -- replay ------------------------------------------------------------------------------------------------

PLACEHOLDER: Final = "replayed"
# HMAC algorithms sign with this; it only has to be long enough for pyjwt not to warn (>= 64 bytes for HS512).
REPLAY_HMAC_SECRET: Final = b"genesys-emulator-replay: a fixed local secret, not a credential of any kind...."
_RSA_ALGS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_HMAC_ALGS: Final = frozenset({"HS256", "HS384", "HS512"})
# RFC 7519's NumericDate claims: a string placeholder would be no date at all.
_DATE_CLAIMS: Final = frozenset({"exp", "iat", "nbf", "auth_time"})
_INTEGER: Final = re.compile(r"-?[0-9]{1,18}")


class Replay:
    """A transcript, for the emulator: its normal Guest API answers reshaped to what the transcript recorded.

    ``frames`` takes the frames the emulator would send for an action and returns what the recorded Genesys
    would have sent: the recorded frames that arrived before the answer (of other classes, synthesised from
    their shapes), then the emulator's own frames with the answer reshaped: its envelope ``type``, ``code`` and
    ``tracingId`` as recorded, its body limited to the recorded fields, missing ones synthesised with a harmless
    value of the recorded type, values converted to the recorded type where possible. An error answer (the
    transcript records none) keeps its class, code and body and takes the recorded answer's tracingId habit. When
    the recorded action got no answer, the emulator's answer is dropped too. Other frames of a class recorded
    in the exchange are reshaped like that class; frames of other classes pass unchanged. An action the
    transcript does not record passes unchanged.
    """

    def __init__(self, transcript: Mapping[str, Any]) -> None:
        self.transcript = transcript
        self._exchanges: dict[str, Mapping[str, Any]] = {}
        for exchange in transcript.get("exchanges", []):
            if isinstance(exchange, Mapping) and isinstance(exchange.get("sent"), str):
                self._exchanges.setdefault(exchange["sent"], exchange)

    @classmethod
    def from_file(cls, path: Path) -> Replay:
        return cls(load(path))

    def frames(
        self, action: str, normal_frames: list[dict[str, Any]], request_tracing_id: object
    ) -> list[dict[str, Any]]:
        exchange = self._exchanges.get(action)
        if exchange is None:
            return normal_frames
        recorded: list[dict[str, Any]] = [shape for shape in exchange["received"] if isinstance(shape, dict)]
        index = exchange.get("answer")
        if not isinstance(index, int) or not 0 <= index < len(recorded):
            index = _guess_answer(recorded)
        answer = recorded[index] if index is not None else None
        tracing = request_tracing_id if isinstance(request_tracing_id, str) else None
        out = [
            synthesise_frame(shape, tracing)
            for shape in (recorded[:index] if index is not None else [])
            if answer is None or shape.get("class") != answer.get("class")
        ]
        by_class = {shape.get("class"): shape for shape in reversed(recorded)}
        normal_index = _normal_answer(normal_frames, tracing)
        for position, frame in enumerate(normal_frames):
            if position == normal_index:
                if answer is None:
                    continue  # the recorded Genesys never answered this action
                if frame.get("class") == answer.get("class"):
                    out.append(conform_frame(frame, answer, tracing))
                else:
                    out.append(_with_tracing(dict(frame), answer.get("tracingId"), tracing))
            elif (shape := by_class.get(frame.get("class"))) is not None:
                out.append(conform_frame(frame, shape, tracing))
            else:
                out.append(frame)
        return out

    @property
    def jwt_record(self) -> Mapping[str, Any] | None:
        exchange = self._exchanges.get("getJwt")
        record = exchange.get("jwt") if exchange is not None else None
        return record if isinstance(record, Mapping) else None

    def jwt(self, claims: Mapping[str, Any], key: Any, headers: Mapping[str, Any] | None = None) -> str:
        """A JWT shaped as recorded: its header's alg and typ, the recorded header fields (values from ``headers``,
        else placeholders) and the recorded claims (values from ``claims``, else placeholders; ``exp`` is always
        ``claims["exp"]``, the real expiry, when recorded). RSA algorithms sign with ``key`` (an RSA private key);
        HS256/384/512 with REPLAY_HMAC_SECRET; "none" is unsigned. An opaque recorded token gives an opaque
        random string of as many segments; an unrecorded one a plain RS256 JWT of ``claims``."""
        record = self.jwt_record
        if record is None:
            return jwt.encode(dict(claims), key, algorithm="RS256", headers=dict(headers or {}))
        if "alg" not in record or "claims" not in record:
            count = record.get("segments")
            count = count if isinstance(count, int) and 1 <= count <= 8 else 1
            return ".".join(secrets.token_urlsafe(24) for _ in range(count))
        now = int(time.time())
        payload: dict[str, Any] = {}
        for name in _str_list(record.get("claims")):
            if name in claims:
                payload[name] = claims[name]
            else:
                payload[name] = now if name in _DATE_CLAIMS else PLACEHOLDER
        payload.update(_odd_fields(record.get("otherClaims")))
        header: dict[str, Any] = {}
        for name in _str_list(record.get("headerFields")):
            if name not in ("alg", "typ"):
                header[name] = (headers or {}).get(name, PLACEHOLDER)
        header.update(_odd_fields(record.get("otherHeaderFields")))
        typ = record.get("typ")
        header["typ"] = typ if isinstance(typ, str) else None  # None: pyjwt leaves typ out
        alg = record.get("alg")
        if alg in _HMAC_ALGS:
            return jwt.encode(payload, REPLAY_HMAC_SECRET, algorithm=str(alg), headers=header)
        if alg == "none":
            return jwt.encode(payload, "", algorithm="none", headers=header)
        if alg in _RSA_ALGS:
            return jwt.encode(payload, key, algorithm=str(alg), headers=header)
        # ES*, EdDSA, "other" or absent: the emulator has no such key, so RS256 with its RSA key stands in.
        return jwt.encode(payload, key, algorithm="RS256", headers=header)


def _str_list(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _odd_fields(count: object) -> dict[str, str]:
    """Stand-ins for fields counted as other: names no pattern admits, so clients meet odd names as recorded."""
    if not (isinstance(count, int) and not isinstance(count, bool)):
        return {}
    return {f"~{number}": PLACEHOLDER for number in range(1, min(count, MAX_FIELDS) + 1)}


def _guess_answer(recorded: list[dict[str, Any]]) -> int | None:
    for index, shape in enumerate(recorded):
        if shape.get("class") in ANSWER_CLASSES or shape.get("tracingId") == "echoed":
            return index
    return None


def _normal_answer(frames: list[dict[str, Any]], tracing_id: str | None) -> int | None:
    """Which of the emulator's frames answers the request: the one carrying its tracingId, else the first of an
    answer class."""
    for index, frame in enumerate(frames):
        if tracing_id is not None and frame.get("tracingId") == tracing_id:
            return index
    for index, frame in enumerate(frames):
        if frame.get("class") in ANSWER_CLASSES:
            return index
    return None


def _with_tracing(frame: dict[str, Any], habit: object, tracing_id: str | None) -> dict[str, Any]:
    frame.pop("tracingId", None)
    if habit == "echoed" and tracing_id is not None:
        frame["tracingId"] = tracing_id
    elif habit == "other":
        frame["tracingId"] = str(uuid.uuid4())
    return frame


def synthesise_frame(shape: Mapping[str, Any], tracing_id: str | None) -> dict[str, Any]:
    """A frame of a recorded shape, with harmless values."""
    frame: dict[str, Any] = {"type": shape.get("type", "other"), "class": shape.get("class", "other")}
    if isinstance(shape.get("code"), int):
        frame["code"] = shape["code"]
    if shape.get("body", "absent") != "absent":
        frame["body"] = synthesise(shape["body"])
    return _with_tracing(frame, shape.get("tracingId"), tracing_id)


def conform_frame(frame: Mapping[str, Any], shape: Mapping[str, Any], tracing_id: str | None) -> dict[str, Any]:
    """``frame`` reshaped to a recorded frame shape (see Replay)."""
    out: dict[str, Any] = {"type": shape.get("type", frame.get("type")), "class": frame.get("class")}
    code = shape.get("code")
    if isinstance(code, int):
        out["code"] = code
    body = shape.get("body", "absent")
    if body != "absent":
        out["body"] = conform(frame["body"], body) if "body" in frame else synthesise(body)
    extra = shape.get("extra")
    if isinstance(extra, Mapping):
        out.update(synthesise(extra))
    return _with_tracing(out, shape.get("tracingId"), tracing_id)


def synthesise(shape: object) -> Any:
    """A harmless value of a recorded shape."""
    if shape == "string":
        return PLACEHOLDER
    if shape == "integer":
        return 0
    if shape == "number":
        return 0.0
    if shape == "boolean":
        return False
    if isinstance(shape, Mapping):
        if "array" in shape:
            return [] if shape["array"] is None else [synthesise(shape["array"])]
        if isinstance(shape.get("object"), Mapping):
            value = {name: synthesise(field) for name, field in shape["object"].items()}
            value.update(_odd_fields(shape.get("otherFields")))
            return value
    if shape == "deep":
        return {}
    return None  # "null", "other" and whatever a hand-edited file says


def conform(value: Any, shape: object) -> Any:
    """``value`` converted to a recorded shape where it can be, else a synthesised value of that shape."""
    match shape:
        case "string":
            if isinstance(value, str):
                return value
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, int | float):
                return str(value)
        case "integer":
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, int):
                return value
            if isinstance(value, float) and math.isfinite(value):
                return int(value)
            if isinstance(value, str) and _INTEGER.fullmatch(value):
                return int(value)
        case "number":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
        case "boolean":
            if isinstance(value, bool):
                return value
            if value in ("true", "false"):
                return value == "true"
        case {"array": element}:
            if isinstance(value, list):
                return [conform(item, element) for item in value] if element is not None else []
        case {"object": Mapping() as fields}:
            if isinstance(value, Mapping):
                out = {name: conform(value[name], f) if name in value else synthesise(f) for name, f in fields.items()}
                assert isinstance(shape, Mapping)
                out.update(_odd_fields(shape.get("otherFields")))
                return out
    return synthesise(shape)
