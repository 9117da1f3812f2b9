"""What learner code and lesson checks import inside the sandbox.

    from dojo import report          # learner code: add a point to the live training curve
    from dojo import check           # checks.py: give a check its title and its hint

Outside the sandbox (plain `python starter.py`) everything here still works:
`report` prints the point instead of streaming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# Set by the harness to a function taking (name, step, value, split); None outside the sandbox.
_metric_sink: Callable[[str, int | None, float, str | None], None] | None = None
# Per (name, split), for checks such as "the loss falls": every value report() was given, and
# the points of the automatically captured losses that reached the chart.
_history: dict[tuple[str, str | None], list[tuple[int, float]]] = {}


def history(name: str = "loss", split: str | None = None) -> list[float]:
    """The values of one curve, in order.

    Loss modules are captured automatically (``split`` "train", or "val" for losses computed
    under ``torch.no_grad()``), as the points the chart shows; ``report()`` keeps every value
    it is given (the chart shows them throttled, like the losses). With ``split=None``, the train
    curve if there is one, else whatever was recorded under that name.
    """
    if split is None and (name, "train") in _history:
        split = "train"
    points = _history.get((name, split)) or _history.get((name, None)) or []
    return [value for _, value in points]


def report(*, step: int | None = None, split: str | None = None, **values: float) -> None:
    """Add points to the live chart, e.g. ``report(step=epoch, loss=0.3, accuracy=0.9)``.

    ``split`` is "train" or "val" when the same metric is tracked on both. A long loop may call
    it every step: past the first 200 points the chart gets one point (the mean) per 50 ms.
    """
    if not values:
        raise TypeError("report() needs at least one value, e.g. report(step=1, loss=0.5)")
    if split not in (None, "train", "val"):
        raise ValueError(f'report(): split is "train" or "val", not {split!r}')
    for name, value in values.items():
        try:
            number = float(value)  # accepts Python numbers and one-element tensors
        except (TypeError, ValueError) as exc:
            raise TypeError(f"report(): {name}={value!r} is not a number") from exc
        _history.setdefault((name, split), []).append((step or 0, number))
        if _metric_sink is None:
            where = f" ({split})" if split else ""
            print(f"[report] step {step}: {name}{where} = {number:.6g}")
        else:
            _metric_sink(name, step, number, split)


def check(title: str, *, hint: str) -> Callable[[F], F]:
    """Give a check a title the learner reads and a hint they can act on when it fails.

    The hint is required: a failing check without a way forward teaches nothing.
    """
    if not title or not hint:
        raise ValueError("check() needs a non-empty title and hint")

    def decorate(func: F) -> F:
        func.dojo_title = title  # type: ignore[attr-defined]
        func.dojo_hint = hint  # type: ignore[attr-defined]
        return func

    return decorate
