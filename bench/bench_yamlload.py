"""Cost of load_yaml_text against yaml.load(CSafeLoader) on a realistic 10-step, 61-line mission."""

from __future__ import annotations

import statistics
import time

import yaml

from pytest_rustchain.yamlload import load_yaml_text

N = 1000
ROUNDS = 15

MISSION = b"""\
name: "Release smoke test"
description: "Build, test and package the project"
version: "1.0"
config:
  timeout_seconds: 120
  fail_fast: true
vars:
  project: demo
  version: "1.2.3"
env:
  RUST_LOG: info
steps:
  - id: checkout
    name: "Check the tree"
    step_type: command
    parameters: {command: git, args: ["status", "--short"]}
  - id: build
    step_type: command
    parameters:
      command: cargo
      args: ["build", "--release"]
    depends_on: [checkout]
    timeout_seconds: 600
  - id: unit
    step_type: command
    parameters: {command: cargo, args: [test, --lib]}
    depends_on: [build]
    retries: {count: 2, delay_seconds: 1.5}
  - id: write_notes
    step_type: create_file
    parameters:
      path: "notes/{{ vars.version }}.md"
      content: |
        # Release {{ vars.version }}
        Built by {{ vars.project }}.
    depends_on: [unit]
  - id: check_notes
    step_type: command
    parameters: {command: grep, args: ["-q", "Release", "notes/1.2.3.md"]}
    depends_on: [write_notes]
    expect: {exit_code: 0}
  - id: lint
    step_type: command
    parameters: {command: cargo, args: [clippy, --, -D, warnings]}
    continue_on_error: true
  - id: package
    step_type: command
    parameters: {command: tar, args: [czf, out.tgz, target/release]}
    depends_on: [build, check_notes]
  - id: size
    step_type: command
    parameters: {command: du, args: [-sh, out.tgz]}
    depends_on: [package]
  - id: cleanup
    step_type: command
    if: always()
    parameters: {command: rm, args: [-rf, target/tmp]}
  - id: done
    step_type: command
    parameters: {command: echo, args: ["mission {{ vars.project }} done"]}
    depends_on: [size, cleanup]
"""


def baseline() -> float:
    start = time.perf_counter()
    for _ in range(N):
        # The baseline gets the decode too, since load_yaml_text starts from bytes.
        yaml.load(MISSION.decode("utf-8"), Loader=yaml.CSafeLoader)
    return time.perf_counter() - start


def ours() -> float:
    start = time.perf_counter()
    for _ in range(N):
        load_yaml_text(MISSION, path="bench.mission.yaml")
    return time.perf_counter() - start


def main() -> None:
    lines = MISSION.count(b"\n")
    assert load_yaml_text(MISSION, path="x").data == yaml.load(MISSION, Loader=yaml.CSafeLoader)
    baseline()  # warm up
    ours()
    # Interleaved rounds, so that a noisy neighbour hits both sides alike; the ratio of medians is reported.
    bases: list[float] = []
    mines: list[float] = []
    for _ in range(ROUNDS):
        bases.append(baseline())
        mines.append(ours())
    base, mine = statistics.median(bases), statistics.median(mines)
    print(f"mission: 10 steps, {lines} lines, {len(MISSION)} bytes")
    print(f"yaml.load(CSafeLoader): {base * 1e6 / N:.1f} us/mission (median of {ROUNDS} x {N})")
    print(f"load_yaml_text:         {mine * 1e6 / N:.1f} us/mission")
    print(f"ratio:                  {mine / base:.3f} (best rounds: {min(mines) / min(bases):.3f})")
    print(f"1,000 missions:         {mine * 1000 / N * 1000:.0f} ms")


if __name__ == "__main__":
    main()
