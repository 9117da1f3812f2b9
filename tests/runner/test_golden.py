"""Golden cases: each folder under cases/ holds code and the events it must produce.

Events are normalised first: times, durations and version strings dropped, consecutive output
chunks of a stream merged, figure data reduced to whether it is a PNG, and metric points taken
out of the sequence (their timing is throttled) and checked by `expect_falling` instead.
Regenerate after an intended change with UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torchinfo

from runner.protocol import Event, Summary
from tests.support.runner import PoolDriver

CASES = Path(__file__).with_name("cases")


def normalise(events: list[Event]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for event in events:
        data = event.model_dump(exclude_none=True)
        for key in ("seq", "t", "duration_ms", "torch", "device"):
            data.pop(key, None)
        if data["type"] == "metric":
            continue
        if data["type"] == "figure":
            data["data"] = (
                "png" if base64.b64decode(data["data"]).startswith(b"\x89PNG") else "not png"
            )
        if (
            data["type"] == "output"
            and result
            and result[-1]["type"] == "output"
            and result[-1]["stream"] == data["stream"]
        ):
            result[-1]["text"] += data["text"]
            continue
        result.append(data)
    return result


def curve(events: list[Event], name: str, split: str | None) -> list[float]:
    return [e.value for e in events if e.type == "metric" and e.name == name and e.split == split]


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_golden_case(pool: PoolDriver, case: str) -> None:
    folder = CASES / case
    spec = json.loads((folder / "case.json").read_text()) if (folder / "case.json").exists() else {}
    request = dict(spec.get("request", {}))
    if (folder / "checks.py").exists():
        request["checks"] = (folder / "checks.py").read_text()
    events = pool.run((folder / "main.py").read_text(), **request)
    got = normalise(events)
    expected_file = folder / "expected.json"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(json.dumps(got, indent=2) + "\n")
    assert expected_file.exists(), f"{expected_file} is missing: write it with UPDATE_GOLDEN=1"
    assert got == json.loads(expected_file.read_text())
    for key in spec.get("expect_falling", []):
        name, split = key.split("/")
        values = curve(events, name, split)
        assert len(values) >= 2, f"too few {key} points: {values}"
        assert values[-1] < values[0] * 0.7, f"{key} did not fall: {values}"


def test_summary_matches_torchinfo(pool: PoolDriver) -> None:
    """The summary event carries torchinfo's own rows and counts for the same model."""
    source = (CASES / "model_summary" / "main.py").read_text()
    events = pool.run(source, summary={"factory": "build_model", "input_size": [1, 64]})
    (summary,) = [e for e in events if isinstance(e, Summary)]
    namespace: dict[str, Any] = {}
    exec(compile(source, "main.py", "exec"), namespace)
    reference = torchinfo.summary(namespace["build_model"](), input_size=(1, 64), verbose=0)
    assert summary.total_params == reference.total_params == 2778
    assert summary.trainable_params == reference.trainable_params
    assert [(r.depth, r.name, r.type, r.output_shape, r.params) for r in summary.rows] == [
        (layer.depth, layer.var_name, layer.class_name, layer.output_size, layer.leftover_params())
        for layer in reference.summary_list
    ]
