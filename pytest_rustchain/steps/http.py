"""The ``http`` step type: one bounded request, hosts checked before connecting, optional record/replay.

RustChain's keys work (``url``, ``method``, ``headers``, ``body``, ``expected_status``, ``body_file``,
``timeout_seconds``). The exchange goes through the same transport as model calls: host policy at
connect time, an overall deadline, a byte cap, redirects only with ``follow_redirects`` (each hop
checked). With ``record: true``, or in record mode ``none``, the exchange is answered from the
mission's cassette like a model call (``none`` opens no socket).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from pytest_rustchain.errors import StepError, StepSkipped
from pytest_rustchain.llm.cassette import CassetteError, CassetteMiss, NoLiveProvider
from pytest_rustchain.llm.runtime import runtime_of
from pytest_rustchain.llm.transport import HostBlockedError, RetryPolicy, TransportError, send
from pytest_rustchain.masking import is_secret_name
from pytest_rustchain.paths import resolve_in_workspace
from pytest_rustchain.steps.base import Outputs, StepContext, StepType, register

__all__ = ["HTTP_SCHEMA", "http_expectations"]

DEFAULT_MAX_BYTES: Final = 1_048_576
_STATUS: Final = {"type": "integer", "minimum": 100, "maximum": 599}
HTTP_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "minLength": 1},
        "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
                            "get", "post", "put", "patch", "delete", "head", "options"]},
        "headers": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "json": {},
        "body": {"type": "string"},
        "body_file": {"type": "string", "minLength": 1},
        "expected_status": {"oneOf": [_STATUS, {"type": "array", "items": _STATUS, "minItems": 1}]},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
        "follow_redirects": {"type": "boolean"},
        "max_response_bytes": {"type": "integer", "minimum": 1},
        "retries": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max": {"type": "integer", "minimum": 0, "maximum": 10},
                "on": {"type": "array", "items": _STATUS},
                "respect_retry_after": {"type": "boolean"},
            },
        },
        "record": {"type": "boolean"},
    },
}  # fmt: skip


def _body(params: Mapping[str, Any], ctx: StepContext) -> tuple[bytes | None, dict[str, str]]:
    given = [k for k in ("json", "body", "body_file") if k in params]
    if len(given) > 1:
        raise StepError(f"give one of json, body or body_file, not {' and '.join(given)}")
    if "json" in params:
        return json.dumps(params["json"]).encode(), {"content-type": "application/json"}
    if "body" in params:
        return str(params["body"]).encode(), {}
    if "body_file" in params:
        path = resolve_in_workspace(ctx.workspace, params["body_file"], cwd=ctx.cwd)
        try:
            data = (ctx.workspace / path).read_bytes()
        except OSError as exc:
            raise StepError(f"body_file {params['body_file']}: {exc.strerror or exc}") from None
        return data, {}
    return None, {}


def _recorded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    # Credentials never go into a cassette or its key, whatever masking would have made of them.
    return {
        k: v
        for k, v in sorted(headers.items())
        if k.lower() not in ("authorization", "cookie", "proxy-authorization") and not is_secret_name(k)
    }


def _expected(params: Mapping[str, Any]) -> list[int] | None:
    value = params.get("expected_status")
    if value is None:
        return None
    return [int(value)] if isinstance(value, int) else [int(v) for v in value]


def _run(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    runtime = runtime_of(ctx.extras)
    method = str(params.get("method", "GET")).upper()
    url = str(params["url"])
    content, extra_headers = _body(params, ctx)
    headers = {**extra_headers, **{str(k).lower(): str(v) for k, v in dict(params.get("headers") or {}).items()}}
    timeout = float(params.get("timeout_seconds") or min(ctx.timeout, 60.0))
    max_bytes = int(params.get("max_response_bytes", DEFAULT_MAX_BYTES))
    retries = dict(params.get("retries") or {})
    retry = RetryPolicy(
        max_retries=int(retries.get("max", 0)),
        statuses=frozenset(int(s) for s in retries.get("on", (429, 503))),
        respect_retry_after=bool(retries.get("respect_retry_after", True)),
    )

    def live() -> Mapping[str, Any]:
        try:
            exchange = send(
                method,
                url,
                headers=headers,
                content=content,
                timeout=min(timeout, ctx.timeout),
                max_bytes=max_bytes,
                policy=runtime.session.policy,
                retry=retry,
                follow_redirects=bool(params.get("follow_redirects", False)),
            )
        except HostBlockedError as exc:
            raise StepError(f"BLOCKED {exc.message}") from None
        except TransportError as exc:
            raise StepError(exc.message) from None
        return {
            "status": exchange.status,
            "headers": {k.lower(): v for k, v in exchange.headers.items()},
            "body": exchange.text(),
            "latency_ms": exchange.latency_ms,
        }

    recorder = runtime.session.recorder
    if params.get("record") or recorder.mode == "none":
        request = {
            "method": method,
            "url": url,
            "headers": _recorded_headers(headers),
            "body": content.decode("utf-8", errors="replace") if content else "",
        }
        try:
            answer = recorder.call(
                kind="http", request=request, step=ctx.step_id, repeat=runtime.repeat, live=live,
                no_live_reason="the http step cannot be recorded here",
            )  # fmt: skip
        except NoLiveProvider as exc:
            raise StepSkipped(str(exc)) from None
        except (CassetteMiss, CassetteError) as exc:
            raise StepError(str(exc)) from None
        response, source = dict(answer.response), answer.source
    else:
        response, source = dict(live()), "live"
    runtime.session.note_http(step=ctx.step_id, source=source, latency_ms=int(response.get("latency_ms") or 0))
    body = str(response.get("body") or "")
    outputs: dict[str, Any] = {
        "status": int(response["status"]),
        "headers": dict(response.get("headers") or {}),
        "body": body,
        "latency_ms": int(response.get("latency_ms") or 0),
        "source": source,
        "url": url,
    }
    if body:
        with contextlib.suppress(json.JSONDecodeError):
            outputs["json"] = json.loads(body)
    expected = _expected(params)
    status = outputs["status"]
    ok = status in expected if expected is not None else 200 <= status < 300
    if not ok:
        wanted = ", ".join(map(str, expected)) if expected is not None else "any 2xx"
        raise StepError(f"{method} {url} answered HTTP {status}, expected {wanted}\n{body[:500]}", outputs=outputs)
    return outputs


def http_expectations(expect: Mapping[str, Any], outputs: Mapping[str, Any]) -> list[str]:
    """The ``http``-only ``expect`` keys: status, json_schema, header, max_latency_ms."""
    problems: list[str] = []
    if "status" in expect:
        wanted = expect["status"] if isinstance(expect["status"], list) else [expect["status"]]
        if outputs.get("status") not in [int(w) for w in wanted]:
            problems.append(f"expect.status: expected {expect['status']}, got {outputs.get('status')}")
    if "json_schema" in expect:
        import jsonschema  # loaded only when a response is checked against a schema

        if "json" not in outputs:
            problems.append("expect.json_schema: the response body is not JSON")
        else:
            errors = list(jsonschema.Draft202012Validator(dict(expect["json_schema"])).iter_errors(outputs["json"]))
            if errors:
                problems.append(f"expect.json_schema: {errors[0].message}")
    if "header" in expect:
        spec = dict(expect["header"])
        name = str(spec.get("name", "")).lower()
        value = dict(outputs.get("headers") or {}).get(name)
        if value is None:
            problems.append(f"expect.header: no header {name!r} in the response")
        elif "matches" in spec and not re.search(str(spec["matches"]), str(value)):
            problems.append(f"expect.header: {name}: {value!r} does not match {spec['matches']!r}")
    if "max_latency_ms" in expect and int(outputs.get("latency_ms") or 0) > int(expect["max_latency_ms"]):
        problems.append(f"expect.max_latency_ms: {outputs.get('latency_ms')} ms, limit {expect['max_latency_ms']} ms")
    return problems


register(
    StepType(
        name="http",
        schema=HTTP_SCHEMA,
        run=_run,
        aliases=("Http", "HTTP"),
        family="network",
        paths={"body_file": "read"},
        expect_keys=frozenset({"status", "json_schema", "header", "max_latency_ms"}),
        check_expect=http_expectations,
    )
)
