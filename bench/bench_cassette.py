"""Cost of replaying model answers: a cassette of 1,000 calls, loaded and replayed (target < 1 ms per call).

Run: python bench/bench_cassette.py [--calls 1000] [--repeat 3]

1. Records a cassette of ``--calls`` calls (distinct prompts of a realistic length, multi-line
   answers) through the real recorder, as a live run would write it.
2. Replays every call through ``LLMSession.chat`` in ``none`` mode, the PR-CI path: reading the file
   with the hardened YAML loader, the schema check, masking and normalising each request, computing
   its key and building the answer. Prints the best of ``--repeat`` runs as milliseconds of CPU time
   per call (process time: on a shared, busy machine wall-clock time mostly measures the wait for a core).
3. As a baseline measured in the same run, prints the cost of one ``json.dumps`` + sha256 of each
   request (the floor any keyed replay pays) and the ratio.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_rustchain.llm.cassette import Normaliser, Recorder
from pytest_rustchain.llm.config import Provider, Target, parse_settings
from pytest_rustchain.llm.providers import ChatRequest
from pytest_rustchain.llm.session import LLMSession
from pytest_rustchain.llm.transport import HostPolicy
from pytest_rustchain.masking import Masker

TARGET = Target(provider=Provider(alias="local", api="openai", base_url="http://127.0.0.1:9/v1"), model="m1")
MASKER = Masker(secrets=("canary-secret-123456",))
NORMALISER = Normaliser.of({"<workspace>": "/tmp/run/ws", "<home>": "/tmp/run/home"})


def requests(count: int) -> list[ChatRequest]:
    system = "You write small, tested Python modules. Answer with one fenced code block."
    return [
        ChatRequest(
            model="m1",
            messages=(
                {"role": "system", "content": system},
                {"role": "user", "content": f"Write function number {i} that adds {i} to its argument. " * 4},
            ),
            params={"temperature": 0.0, "max_tokens": 400},
        )
        for i in range(count)
    ]


def record(path: Path, reqs: list[ChatRequest]) -> None:
    recorder = Recorder(path=path, mode="once", masker=MASKER, normaliser=NORMALISER)
    for i, req in enumerate(reqs):
        code = f"```python\ndef add_{i}(x: int) -> int:\n    return x + {i}\n```\n"
        answer: dict[str, Any] = {"content": code, "finish_reason": "stop", "usage": {"input_tokens": 60}}
        recorder.call(
            kind="llm", request=req.to_record("openai"), step=f"s{i % 20}", live=functools.partial(dict, answer)
        )
    recorder.save()


def replay(path: Path, reqs: list[ChatRequest]) -> float:
    started = time.process_time()
    recorder = Recorder(path=path, mode="none", masker=MASKER, normaliser=NORMALISER)
    session = LLMSession(settings=parse_settings(), recorder=recorder, policy=HostPolicy())
    for i, req in enumerate(reqs):
        reply = session.chat(req, target=TARGET, step=f"s{i % 20}")
        assert reply.source == "recorded"
    return time.process_time() - started


def baseline(reqs: list[ChatRequest]) -> float:
    started = time.process_time()
    for req in reqs:
        hashlib.sha256(json.dumps(req.to_record("openai"), sort_keys=True).encode()).hexdigest()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    reqs = requests(args.calls)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.cassette.yaml"
        record(path, reqs)
        size = path.stat().st_size
        best = min(replay(path, reqs) for _ in range(args.repeat))
        floor = min(baseline(reqs) for _ in range(args.repeat))
    per_call = best / args.calls * 1000
    print(f"cassette: {args.calls} calls, {size / 1024:.0f} KiB")
    print(f"replay (load + check + key + answer): {per_call:.3f} ms CPU per call (target < 1 ms)")
    print(f"baseline (canonical JSON + sha256 only): {floor / args.calls * 1000:.3f} ms CPU per call")
    print(f"ratio replay / baseline: {best / floor:.1f}x")
    print("PASS" if per_call < 1.0 else "MISS")


if __name__ == "__main__":
    main()
