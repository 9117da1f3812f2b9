"""The seed exercise's checks, run in the real sandbox against learners' likely attempts.

Every attempt is the solution with one thing changed (or the untouched starter). All run
concurrently in one warm pool, once per module, so the whole file costs one pool start.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from app.content import Lesson, load_lesson
from runner.protocol import Done, Test
from tests.support.content import ROOT, SEED_LESSON

pytestmark = pytest.mark.slow  # a warm sandbox pool: about half a minute on two cores

LESSON = ROOT / "content" / "intro-to-deep-learning" / SEED_LESSON

TITLES = {
    "standardised": "The features are standardised",
    "hidden": "The network has at least two hidden layers",
    "forward": "The forward pass runs every layer and gives 10 scores",
    "activations": "There is an activation function between the layers",
    "loss_fn": "The loss function suits classification",
    "optimizer": "An optimizer updates the model's weights",
    "loss_falls": "The loss falls during training",
    "accuracy": "The model reads digits it has never seen",
    "printed": "You printed the model's architecture",
    "params": "You counted the trainable parameters",
}

# The solution's whole check run (learner code and checks) must stay under this on CPU.
SOLUTION_BUDGET_MS = 20_000

SEQUENTIAL_MODEL = """def build_model() -> nn.Module:
    return nn.Sequential(
        nn.Linear(N_FEATURES, 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, N_CLASSES),
        nn.LogSoftmax(dim=1),
    )"""

# attempt name -> (old, new) replacements applied to the solution. Mistakes that touch
# different checks share an attempt, since each run costs a fresh sandbox.
ATTEMPTS: dict[str, list[tuple[str, str]]] = {
    "solution": [],
    # A different, valid way: nn.Sequential with activation modules, NLLLoss after LogSoftmax,
    # no `losses` list (the check then reads the loss the chart captured), and torchinfo's
    # summary instead of print(model).
    "another_right_way": [
        (
            'def build_model() -> nn.Module:\n    """A fresh, untrained network."""\n'
            "    return DigitClassifier()",
            SEQUENTIAL_MODEL,
        ),
        ("nn.CrossEntropyLoss()", "nn.NLLLoss()"),
        ("    losses.append(loss.item())\n", ""),
        ("print(model)\n", "from torchinfo import summary\n\nsummary(model, input_size=(1, 64))\n"),
    ],
    "no_activations_and_unscaled_test_set": [
        ("x = self.relu(self.hidden1(x))", "x = self.hidden1(x)"),
        ("X_test = scaler.transform(X_test)", ""),
    ],
    "raw_scores_to_nll_and_optimizer_on_another_model": [
        ("nn.CrossEntropyLoss()", "nn.NLLLoss()"),
        ("Adam(model.parameters()", "Adam(build_model().parameters()"),
    ],
    # Layers that fit together without hidden2, a forward pass that skips it, and a print
    # that shows a weight's shape, not the architecture.
    "forward_skips_a_layer_and_prints_no_architecture": [
        ("nn.Linear(64, 32)", "nn.Linear(64, 64)"),
        ("nn.Linear(32, N_CLASSES)", "nn.Linear(64, N_CLASSES)"),
        ("        x = self.relu(self.hidden2(x))\n", ""),
        ("print(model)\n", "print(next(model.parameters()).shape)\n"),
    ],
}


@dataclass
class Attempt:
    done: Done
    tests: dict[str, Test]


def _code(name: str, lesson: Lesson) -> str:
    if name == "starter":
        return lesson.starter
    code = lesson.solution
    for old, new in ATTEMPTS[name]:
        assert old in code, f"{name}: {old!r} is not in solution.py any more"
        code = code.replace(old, new)
    return code


async def _run_all(lesson: Lesson, names: list[str]) -> dict[str, Attempt]:
    from runner.pool import WarmPool

    async def one(pool: WarmPool, name: str) -> Attempt:
        tests: dict[str, Test] = {}
        done = None
        async for event in pool.run(lesson.run_request(_code(name, lesson), mode="check")):
            if isinstance(event, Test):
                tests[event.name] = event
            elif isinstance(event, Done):
                done = event
        assert done is not None
        return Attempt(done, tests)

    async with WarmPool(size=2) as pool:
        results = await asyncio.gather(*(one(pool, name) for name in names))
    return dict(zip(names, results, strict=True))


@pytest.fixture(scope="module")
def attempts() -> dict[str, Attempt]:
    pytest.importorskip("runner.pool")
    names = ["starter", *ATTEMPTS]
    return asyncio.run(_run_all(load_lesson(LESSON), names))


def _failed(attempt: Attempt) -> dict[str, str]:
    """Check key -> message, for the checks that failed."""
    return {
        key: attempt.tests[title].message
        for key, title in TITLES.items()
        if attempt.tests[title].status != "passed"
    }


def test_solution_passes_every_check(attempts: dict[str, Attempt]) -> None:
    solution = attempts["solution"]
    assert solution.done.status == "completed"
    assert [test.status for test in solution.tests.values()] == ["passed"] * len(TITLES)
    assert list(solution.tests) == list(TITLES.values())  # every check ran, in file order
    assert solution.done.duration_ms < SOLUTION_BUDGET_MS, solution.done.duration_ms


def test_starter_runs_and_fails_its_todo_checks_cleanly(attempts: dict[str, Attempt]) -> None:
    starter = attempts["starter"]
    assert starter.done.status == "completed" and starter.done.error is None
    statuses = {key: starter.tests[title].status for key, title in TITLES.items()}
    # Failed by an assert with a message, never crashed: the learner reads why, and the hint.
    assert statuses == dict.fromkeys(TITLES, "failed")  # every check is tied to a TODO
    for title, test in starter.tests.items():
        if test.status == "failed":
            assert test.message and test.hint, title
            assert "Error" not in test.message, test.message


def test_another_right_way_passes(attempts: dict[str, Attempt]) -> None:
    assert _failed(attempts["another_right_way"]) == {}


def test_missing_activations_and_unscaled_test_set_are_caught(
    attempts: dict[str, Attempt],
) -> None:
    failed = _failed(attempts["no_activations_and_unscaled_test_set"])
    assert "hidden" not in failed
    assert "between layer 1 and layer 2" in failed["activations"]
    assert "X_test is not" in failed["standardised"]


def test_wrong_loss_and_detached_optimizer_are_caught(attempts: dict[str, Attempt]) -> None:
    failed = _failed(attempts["raw_scores_to_nll_and_optimizer_on_another_model"])
    assert "LogSoftmax" in failed["loss_fn"]
    assert "same model you train" in failed["optimizer"]
    assert "loss_falls" in failed and "accuracy" in failed  # the model never changed


def test_a_forward_pass_that_skips_a_layer_and_no_printed_model_are_caught(
    attempts: dict[str, Attempt],
) -> None:
    failed = _failed(attempts["forward_skips_a_layer_and_prints_no_architecture"])
    assert set(failed) == {"forward", "printed"}, failed
    assert "never uses hidden2" in failed["forward"]
    assert "print(model)" in failed["printed"]
