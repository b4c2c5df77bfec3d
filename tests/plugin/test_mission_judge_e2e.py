"""Black-box tests of the mission-level judge over the repeats, against a real OpenAI-protocol server on 127.0.0.1."""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

MISSION = """
name: Name a colour three times
config: {repeat: 3}
reward: rustchain
judge:
  method: ruler
  rubric: Red is the best colour, green is fine, blue is poor.
steps:
  - id: answer
    step_type: llm
    parameters:
      prompt: Name a colour.
  - id: tidy
    step_type: noop
"""

COLOURS = ("green", "red", "blue")
VALUE = {"red": 0.9, "green": 0.5, "blue": 0.1}
REPORT_SCHEMA = json.loads(resources.files("pytest_rustchain").joinpath("schema/report.schema.json").read_text())
TRAJECTORY_SCHEMA = json.loads(
    resources.files("pytest_rustchain").joinpath("schema/trajectory.schema.json").read_text()
)


def _answer(content: str, model: str = "m") -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }


def _json(data: dict[str, Any]) -> Response:
    return Response(json.dumps(data), content_type="application/json")


def _is_judge(request: Request) -> bool:
    return "strict evaluator" in str(request.get_json()["messages"][0]["content"])


def _scores_by_colour(request: Request) -> dict[str, Any]:
    """The judge's answer: each shown repeat scored by the colour in its transcript, wherever the shuffle put it."""
    prompt = request.get_json()["messages"][1]["content"]
    shown = re.findall(r"Candidate (c\d+)[^:]*:\n<<<\n(.*?)\n>>>", prompt, re.S)
    scores = []
    for cid, text in shown:
        colour = next(c for c in COLOURS if f"[assistant]\n{c}" in text)
        scores.append({"id": cid, "score": VALUE[colour], "explanation": f"says {colour}"})
    return _answer(json.dumps({"scores": scores}), model="judge-model")


class Server:
    """Answers the llm step with green, red, blue in turn, and the judge by the colours it is shown."""

    def __init__(self, judge_answers: list[str] | None = None) -> None:
        self.turn = 0
        self.judge_answers = judge_answers
        self.judge_requests: list[dict[str, Any]] = []

    def __call__(self, request: Request) -> Response:
        if _is_judge(request):
            self.judge_requests.append(request.get_json())
            if self.judge_answers is not None:
                return _json(_answer(self.judge_answers.pop(0), model="judge-model"))
            return _json(_scores_by_colour(request))
        colour = COLOURS[self.turn % len(COLOURS)]
        self.turn += 1
        return _json(_answer(colour))


def _configure(pytester: pytest.Pytester, httpserver: HTTPServer, mission: str = MISSION, judge: bool = True) -> None:
    roles = "mission_llm_roles =\n    default = local:m\n    judge = local:judge-model\n" if judge else ""
    pytester.makeini(f"[pytest]\nmission_llm_providers =\n    local = openai {httpserver.url_for('/v1')}\n{roles}")
    if not judge:
        mission = mission.replace(
            "      prompt: Name a colour.", "      provider: local\n      model: m\n      prompt: Name a colour."
        )
    pytester.makefile(".mission.yaml", colours=textwrap.dedent(mission))


def _report(pytester: pytest.Pytester) -> dict[str, Any]:
    data = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, REPORT_SCHEMA)
    mission = data["missions"][0]
    assert isinstance(mission, dict)
    return mission


def test_ruler_scores_the_repeats_and_feeds_the_reward(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """One judge call ranks the three repeats; its scores, mapped back to r1..r3 whatever the shown order,
    are in the terminal, the JSON report, the reward's quality term, JUnit and the Markdown summary."""
    server = Server()
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(server)
    _configure(pytester, httpserver)
    md = pytester.path / "summary.md"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--mission-report=r.json", "--junitxml=j.xml", f"--mission-summary={md}"
    )
    assert result.ret == 0, result.stdout.str()
    assert len(server.judge_requests) == 1
    result.stdout.fnmatch_lines(
        ["*judge (ruler, live): mean 0.500, best r2*", "*judge score per repeat: 0.50 0.90 0.10*"]
    )
    mission = _report(pytester)
    judge = mission["repeats"]["judge"]
    assert judge["scores"] == [0.5, 0.9, 0.1]
    assert judge["best_index"] == 1
    assert sorted(judge["shown_order"]) == [0, 1, 2]
    assert judge["shown_order"] != [0, 1, 2]  # the judge saw them shuffled, and the scores were mapped back
    assert [r["quality"] for r in mission["repeats"]["rewards"]] == [0.5, 0.9, 0.1]
    assert {r["quality_from"] for r in mission["repeats"]["rewards"]} == {"judge"}
    # 0.5 * success (2/2 steps) + 0.3 * efficiency (no agent: 1) + 0.2 * quality
    assert [r["reward"] for r in mission["repeats"]["rewards"]] == pytest.approx([0.9, 0.98, 0.82])
    step = next(s for s in mission["steps"] if s["id"] == "repeats/judge")
    assert step["status"] == "passed"
    assert mission["steps_total"] == 7  # 3 repeats x 2 steps + the judge
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "j.xml").iter("property")}  # noqa: S314 - pytest's own file
    assert props["judge_scores"] == "0.5000 0.9000 0.1000"
    assert props["judge_method"] == "ruler"
    assert "| ruler 0.50 0.90 0.10 |" in md.read_text(encoding="utf-8")
    # The judge saw each repeat's transcript once, with its facts, and no repeat's workspace path.
    prompt = server.judge_requests[0]["messages"][1]["content"]
    assert prompt.count("## step answer (llm): passed") == 3
    assert '"counted_steps_passed": "2/2"' in prompt
    assert str(pytester.path) not in prompt


def test_replay_gives_the_same_scores_without_a_server(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """The judge's call is recorded in the mission's cassette and replayed in none mode with the same scores."""
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(Server())
    _configure(pytester, httpserver)
    assert pytester.runpytest("-p", "no:cacheprovider").ret == 0
    cassette = (pytester.path / "cassettes" / "colours.cassette.yaml").read_text(encoding="utf-8")
    assert "step: repeats/judge" in cassette
    httpserver.clear()
    replay = pytester.runpytest("-p", "no:cacheprovider", "--mission-record-mode=none", "--mission-report=r.json")
    assert replay.ret == 0, replay.stdout.str()
    replay.stdout.fnmatch_lines(["*judge (ruler, recorded): mean 0.500, best r2*", "*llm:*4 calls (4 recorded*"])
    assert _report(pytester)["repeats"]["judge"]["scores"] == [0.5, 0.9, 0.1]


def test_malformed_then_valid_judge_answer(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """A judge answer that is not JSON gets one retry naming the violation; the valid answer scores the repeats."""
    good = json.dumps({"scores": [{"id": f"c{i}", "score": 0.25 * i, "explanation": "e"} for i in (1, 2, 3)]})
    server = Server(judge_answers=["The second one is best.", good])
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(server)
    _configure(pytester, httpserver)
    result = pytester.runpytest("-p", "no:cacheprovider", "--mission-report=r.json")
    assert result.ret == 0, result.stdout.str()
    assert "the answer is not JSON" in server.judge_requests[1]["messages"][-1]["content"]
    assert sorted(_report(pytester)["repeats"]["judge"]["scores"]) == [0.25, 0.5, 0.75]


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        ({"c1": 0.5, "c2": 0.5}, "expected exactly 3 scores (one per candidate), got 2"),
        ({"c1": 7, "c2": 0.1, "c3": 0.2}, "the score of c1 is 7, outside [0, 1]"),
        ({"c1": "0.5", "c2": 0.1, "c3": 0.2}, "the score of c1 is '0.5', not a number"),
    ],
    ids=["wrong-count", "seven", "string"],
)
def test_invalid_judge_twice_fails_the_mission(
    pytester: pytest.Pytester, httpserver: HTTPServer, answer: dict[str, object], text: str
) -> None:
    """A judge that breaks the contract twice fails repeats/judge and the mission; the success-rate
    section counts it as the one failed result, and the rewards fall back to the expects."""
    body = json.dumps({"scores": [{"id": k, "score": v, "explanation": "e"} for k, v in answer.items()]})
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(Server(judge_answers=[body, body]))
    _configure(pytester, httpserver)
    result = pytester.runpytest("-p", "no:cacheprovider", "-v", "--mission-report=r.json")
    assert result.ret == 1
    pattern = text.replace("[", "[[]")
    result.stdout.fnmatch_lines([f"*the judge of the repeats failed*{pattern}*"])
    result.stdout.fnmatch_lines(["*SUBFAILED[[]repeats/judge]*"])
    mission = _report(pytester)
    assert mission["status"] == "failed"
    assert (mission["steps_passed"], mission["steps_total"]) == (6, 7)
    assert mission["repeats"]["judge"]["status"] == "failed"
    assert {r["quality_from"] for r in mission["repeats"]["rewards"]} == {"expect"}


def test_no_judge_model_skips_the_judge_uncounted(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """Without a judge role and without a recording the judge is skipped with the reason, not counted,
    and the mission passes on its steps."""
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(Server())
    _configure(pytester, httpserver, judge=False)
    result = pytester.runpytest("-p", "no:cacheprovider", "-v", "-rs", "--mission-report=r.json")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*SUBSKIPPED[[]repeats/judge]*", "*no judge model is configured*"])
    mission = _report(pytester)
    assert (mission["steps_passed"], mission["steps_total"]) == (6, 6)
    assert "scores" not in mission["repeats"]["judge"]


def test_skipped_judge_is_listed_at_its_line(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """-rs lists a skipped judge at the judge: line of the mission file, not inside the plugin."""
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(Server())
    _configure(pytester, httpserver, judge=False)
    result = pytester.runpytest("-p", "no:cacheprovider", "-v", "-rs")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["SUBSKIPPED*colours.mission.yaml:4: no judge model is configured*"])
    assert "plugin.py" not in result.stdout.str()


def test_missing_judge_role_fails_with_a_hint(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """With roles configured but none named judge, the judge fails (and the mission) with the ini line to add."""
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(Server())
    _configure(pytester, httpserver)
    pytester.makeini(
        f"[pytest]\nmission_llm_providers =\n    local = openai {httpserver.url_for('/v1')}\n"
        "mission_llm_roles =\n    default = local:m\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*no LLM role 'judge' is configured*", '*HINT: add "judge = ALIAS:MODEL"*'])


def test_min_mean_score_fails_a_poorly_judged_mission(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """judge.min_mean_score fails the judge, and the mission, when the repeats' mean score is below it."""
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(Server())
    _configure(
        pytester, httpserver, mission=MISSION.replace("  method: ruler\n", "  method: ruler\n  min_mean_score: 0.6\n")
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*judge.min_mean_score: the mean score over 3 repeats is 0.500, below 0.6*"])


def test_rubric_judge_scores_each_repeat_alone(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """method: rubric asks once per repeat, and works for a single run too."""
    server = Server()
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(server)
    _configure(pytester, httpserver, mission=MISSION.replace("method: ruler", "method: rubric"))
    result = pytester.runpytest("-p", "no:cacheprovider", "--mission-repeat=1", "--mission-report=r.json")
    assert result.ret == 0, result.stdout.str()
    assert len(server.judge_requests) == 1
    assert _report(pytester)["repeats"]["judge"]["scores"] == [0.5]


def test_trajectories_carry_judge_scores_and_validations(
    pytester: pytest.Pytester, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Each repeat's trajectory ends with the judge's score and the reward built on it, and an llm step
    with validate: writes one validation event per checked answer; every line fits the shipped schema."""
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(Server())
    mission = MISSION.replace(
        "      prompt: Name a colour.\n",
        "      prompt: Name a colour.\n      validate: {regex: '^(red|green)$'}\n      max_attempts: 1\n",
    )
    _configure(pytester, httpserver, mission=mission)
    out = tmp_path / "traj"
    pytester.runpytest("-p", "no:cacheprovider", f"--mission-trajectories={out}")
    files = sorted(out.glob("colours/*/r*.jsonl"))
    assert len(files) == 3
    for path in files:
        events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for event in events:
            jsonschema.validate(event, TRAJECTORY_SCHEMA)
        kinds = [e["event"] for e in events]
        assert kinds.index("llm_call") < kinds.index("validation") < kinds.index("step_end")
        scores = [e for e in events if e["event"] == "score"]
        assert [s["kind"] for s in scores] == ["judge", "reward"]
        assert scores[1]["quality"] == scores[0]["score"]
        assert scores[0]["method"] == "ruler"
    third = [json.loads(line) for line in files[2].read_text(encoding="utf-8").splitlines()]
    validation = next(e for e in third if e["event"] == "validation")
    assert validation["passed"] is False
    assert "does not match" in validation["detail"] or validation["detail"]


@pytest.mark.parametrize(
    ("written", "error", "hint"),
    [
        ("judge: ruler", "expected object, got string 'ruler'", "judge is a mapping: judge: {method: ruler*"),
        ("judge: {method: best}", "'best' is not one of ['ruler', 'rubric']", "method is ruler*or rubric*"),
        ("judge: {steps: answer}", "expected array, got string 'answer'", "write a list of step ids: steps: [answer]"),
        ("judge: {steps: [nope]}", "judge.steps names unknown step 'nope'", "step ids: answer, tidy"),
        (
            "judge: {steps: [tidy]}",
            "judge.steps: step 'tidy' is a noop step*",
            "name llm, chain or agent steps: answer",
        ),
        ("judge: {min_mean_score: 70}", "number 70 is out of range*", "scores are between 0 and 1: 70% is written 0.7"),
        ("judge: {rubrik: x}", "unknown key 'rubrik'", "did you mean 'rubric'?*"),
    ],
    ids=["string", "method", "steps-string", "unknown-step", "not-a-model-step", "percent", "typo"],
)
def test_malformed_judge_is_a_clear_collection_error(
    pytester: pytest.Pytester, written: str, error: str, hint: str
) -> None:
    """A malformed judge: is reported at its line with what is wrong and a HINT, and the mission fails."""
    pytester.makefile(
        ".mission.yaml",
        bad=f"name: x\n{written}\nsteps:\n  - id: answer\n    step_type: llm\n    parameters: {{prompt: hi}}\n"
        "  - id: tidy\n    step_type: noop\n",
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 1
    escape = str.maketrans({"[": "[[]", "]": "[]]"})
    result.stdout.fnmatch_lines(
        [f"bad.mission.yaml:2:*: {error.translate(escape)}", f"*HINT: {hint.translate(escape)}"]
    )


def _record_trajectories(pytester: pytest.Pytester, httpserver: HTTPServer, server: Server) -> Path:
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(server)
    _configure(pytester, httpserver)
    first = pytester.runpytest("-p", "no:cacheprovider", "--mission-trajectories=traj")
    assert first.ret == 0, first.stdout.str()
    return pytester.path / "traj"


def test_rejudge_replays_the_stored_run_without_running_steps(
    pytester: pytest.Pytester, httpserver: HTTPServer
) -> None:
    """--mission-rejudge=DIR reads the stored trajectories, runs no step, and replays the judge from the
    cassette: the same scores and rewards, offline."""
    _record_trajectories(pytester, httpserver, Server())
    httpserver.clear()
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "-v",
        "--mission-rejudge=traj",
        "--mission-record-mode=none",
        "--mission-report=r.json",
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*SUBPASSED[[]repeats/judge]*", "*rejudged the stored run *: no step ran*"])
    assert "r1/answer" not in result.stdout.str().split("mission success rates")[0]
    mission = _report(pytester)
    assert mission["repeats"]["judge"]["scores"] == [0.5, 0.9, 0.1]
    assert [r["reward"] for r in mission["repeats"]["rewards"]] == pytest.approx([0.9, 0.98, 0.82])
    assert (mission["steps_passed"], mission["steps_total"]) == (7, 7)


def test_rejudge_with_a_new_rubric_rescores(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """A new rubric asks the judge again over the stored transcripts (new_episodes records it), and the
    new scores become the rewards' quality."""
    _record_trajectories(pytester, httpserver, Server())
    mission = MISSION.replace("Red is the best colour", "Blue is the best colour")
    pytester.makefile(".mission.yaml", colours=textwrap.dedent(mission))
    fixed = json.dumps({"scores": [{"id": f"c{i}", "score": 0.2, "explanation": "e"} for i in (1, 2, 3)]})
    server = Server(judge_answers=[fixed])
    httpserver.clear()
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(server)
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--mission-rejudge=traj",
        "--mission-record-mode=new_episodes",
        "--mission-report=r.json",
    )
    assert result.ret == 0, result.stdout.str()
    assert len(server.judge_requests) == 1
    assert server.turn == 0  # no llm step asked anything
    assert "Blue is the best colour" in server.judge_requests[0]["messages"][1]["content"]
    assert _report(pytester)["repeats"]["judge"]["scores"] == [0.2, 0.2, 0.2]


@pytest.mark.parametrize(
    ("damage", "text"),
    [
        ("missing-dir", ["*--mission-rejudge=nowhere: no such directory*", "*HINT: give the directory a run wrote*"]),
        ("no-index", ["*--mission-rejudge=traj: */index.json does not exist*", "*HINT:*"]),
        ("bad-index", ["*is not a trajectory index*", "*HINT:*"]),
    ],
    ids=["missing-dir", "no-index", "bad-index"],
)
def test_rejudge_bad_directory_is_a_usage_error(
    pytester: pytest.Pytester, httpserver: HTTPServer, damage: str, text: list[str]
) -> None:
    """A missing directory or a missing or foreign index.json stops the run with a clear usage error, no traceback."""
    traj = _record_trajectories(pytester, httpserver, Server())
    if damage == "no-index":
        (traj / "index.json").unlink()
    elif damage == "bad-index":
        (traj / "index.json").write_text('{"runs": 3}', encoding="utf-8")
    where = "nowhere" if damage == "missing-dir" else "traj"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--mission-rejudge={where}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(text)
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


@pytest.mark.parametrize(
    ("damage", "text"),
    [
        ("missing-file", "*r2.jsonl is listed in index.json but does not exist*"),
        ("not-json", "*r2.jsonl:2: not JSON*"),
        ("schema", "*r2.jsonl:2: the event does not fit the trajectory schema at *"),
    ],
    ids=["missing-file", "not-json", "schema"],
)
def test_rejudge_damaged_trajectory_fails_the_mission_clearly(
    pytester: pytest.Pytester, httpserver: HTTPServer, damage: str, text: str
) -> None:
    """A stored file that is gone, not JSON or off the shipped schema fails the mission naming the file and line."""
    traj = _record_trajectories(pytester, httpserver, Server())
    (second,) = traj.glob("colours/*/r2.jsonl")
    lines = second.read_text(encoding="utf-8").splitlines()
    if damage == "missing-file":
        second.unlink()
    elif damage == "not-json":
        second.write_text("\n".join([lines[0], "{oops", *lines[2:]]) + "\n", encoding="utf-8")
    else:
        event = json.loads(lines[1])
        event["seq"] = "one"
        second.write_text("\n".join([lines[0], json.dumps(event), *lines[2:]]) + "\n", encoding="utf-8")
    httpserver.clear()
    result = pytester.runpytest("-p", "no:cacheprovider", "--mission-rejudge=traj", "--mission-record-mode=none")
    assert result.ret == 1
    result.stdout.fnmatch_lines([text])
    assert "Traceback" not in result.stdout.str()


def test_rejudge_skips_missions_without_a_stored_run(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """A mission the directory holds no run of is skipped with the reason, not counted."""
    _record_trajectories(pytester, httpserver, Server())
    pytester.makefile(".mission.yaml", other="name: other\nsteps:\n  - id: a\n    step_type: noop\n")
    httpserver.clear()
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", "--mission-rejudge=traj", "--mission-record-mode=none")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*no stored run of this mission*"])
    assert result.parseoutcomes().get("skipped") == 1


def test_swap_check_and_xdist(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """swap_check asks a second time in reverse order and reports the order sensitivity; under -n 2 the
    judge's scores and the rewards are the same as in a serial run."""
    server = Server()
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(server)
    _configure(
        pytester, httpserver, mission=MISSION.replace("  method: ruler\n", "  method: ruler\n  swap_check: true\n")
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "2", "--mission-report=r.json")
    assert result.ret == 0, result.stdout.str()
    assert len(server.judge_requests) == 2
    first, second = (r["messages"][1]["content"] for r in server.judge_requests)
    order = [re.findall(r"\[assistant\]\n(\w+)", text) for text in (first, second)]
    assert order[1] == list(reversed(order[0]))
    result.stdout.fnmatch_lines(["*judge order sensitivity (swap check): 0.000*"])
    judge = _report(pytester)["repeats"]["judge"]
    assert judge["scores"] == judge["swapped_scores"] == [0.5, 0.9, 0.1]
    assert judge["order_sensitivity"] == 0
    assert [r["reward"] for r in _report(pytester)["repeats"]["rewards"]] == pytest.approx([0.9, 0.98, 0.82])


def test_ruler_with_one_repeat_is_skipped_with_the_reason(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """A ruler judge has nothing to rank in a single run: it is skipped, not counted, with a HINT, and
    the judge model is never asked."""
    server = Server()
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(server)
    _configure(pytester, httpserver)
    result = pytester.runpytest("-p", "no:cacheprovider", "-v", "-rs", "--mission-repeat=1", "--mission-report=r.json")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*the ruler judge ranks the repeats against each other and this run has 1 repeat*"])
    assert server.judge_requests == []
    mission = _report(pytester)
    assert (mission["steps_passed"], mission["steps_total"]) == (2, 2)
    assert mission["repeats"]["judge"]["status"] == "skipped"


def test_rejudge_asks_judge_steps_again_too(pytester: pytest.Pytester) -> None:
    """Rejudging the shipped example replays each repeat's judge step (its stored candidates) and the
    mission-level judge from the scripted cassette: the same scores, no other step run."""
    root = Path(__file__).resolve().parents[2] / "missions"
    (pytester.path / "missions" / "cassettes").mkdir(parents=True)
    for name in ("codegen_repeats.mission.yaml", "cassettes/codegen_repeats.cassette.yaml"):
        (pytester.path / "missions" / name).write_text((root / name).read_text(encoding="utf-8"), encoding="utf-8")
    pytester.makeini("[pytest]\nmarkers =\n    smoke: quick examples\n")
    first = pytester.runpytest("missions/", "-p", "no:cacheprovider", "--mission-record-mode=none",
                               "--mission-trajectories=traj")  # fmt: skip
    assert first.ret == 0
    result = pytester.runpytest(
        "missions/", "-p", "no:cacheprovider", "-v", "--mission-record-mode=none", "--mission-rejudge=traj",
        "--mission-report=r.json",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    ran = re.findall(r"SUBPASSED\[([^\]]+)\]", result.stdout.str())
    assert ran == ["r1/rank", "r2/rank", "r4/rank", "r5/rank", "repeats/judge"]
    result.stdout.fnmatch_lines(["*llm:*5 calls (0 recorded, 5 scripted, 0 live)*"])
    mission = _report(pytester)
    ranks = [s["outputs"]["scores"] for s in mission["steps"] if s["id"].endswith("/rank") and s["status"] == "passed"]
    assert ranks == [[0.9, 0.3], [0.9, 0.9], [0.9, 0.3], [0.9, 0.9]]
    assert mission["repeats"]["judge"]["scores"] == [0.9, 0.6, 0.1, 0.9, 0.9]
    assert mission["steps_total"] == 21


@pytest.mark.parametrize("flags", [["--mission-record-mode=all"], ["--mission-cassette-prune"]], ids=["all", "prune"])
def test_rejudge_keeps_the_steps_recordings(
    pytester: pytest.Pytester, httpserver: HTTPServer, flags: list[str]
) -> None:
    """A rejudge records or prunes only the judge's answers: the recordings of the steps it did not run stay
    in the cassette, and none of them is reported as unused."""
    _record_trajectories(pytester, httpserver, Server())
    (cassette,) = pytester.path.glob("cassettes/*.yaml")
    steps_before = cassette.read_text(encoding="utf-8").count("step: answer")
    assert steps_before == 3
    result = pytester.runpytest("-p", "no:cacheprovider", "--mission-rejudge=traj", *flags)
    assert result.ret == 0, result.stdout.str()
    assert cassette.read_text(encoding="utf-8").count("step: answer") == steps_before
    assert "unused recordings" not in result.stdout.str()
    replay = pytester.runpytest("-p", "no:cacheprovider", "--mission-record-mode=none")
    assert replay.ret == 0, replay.stdout.str()


def test_rejudge_slowest_steps_name_the_steps_lines(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """The slowest-steps list of a rejudge points at each stored step's line in the mission file, not line 0."""
    _record_trajectories(pytester, httpserver, Server())
    httpserver.clear()
    result = pytester.runpytest("-p", "no:cacheprovider", "--mission-rejudge=traj", "--mission-record-mode=none")
    assert result.ret == 0, result.stdout.str()
    slowest = result.stdout.str().split("slowest steps:")[1]
    assert "colours.mission.yaml:8" in slowest, slowest
    assert "colours.mission.yaml:0" not in slowest
