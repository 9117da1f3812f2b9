"""What the harness captures from a job without any code from the learner: training curves
(every torch.nn loss module, and report()), matplotlib figures, and the model summary."""

from __future__ import annotations

import base64
import io
import os
import time
from typing import Any

import matplotlib.pyplot as plt
import torch
import torchinfo

from . import dojo
from .messages import send

METRIC_INTERVAL_S = 0.05
FULL_DETAIL_STEPS = 200


def notice(text: str) -> None:
    """A line for the learner from the platform, on their stderr."""
    os.write(2, f"[torchdojo] {text}\n".encode())


# --- curves ------------------------------------------------------------------------------------


class Curve:
    """One chart curve. Past the first FULL_DETAIL_STEPS points, points are throttled: each one
    is the mean of the values since the previous point, so a million-step loop sends a few
    hundred points, not a million, and the values stay on the device until a point is due (no
    GPU sync per step).

    Automatically captured losses count their own steps and record the points they send in
    ``dojo.history``; ``report()`` gives its own steps and has recorded every value there
    itself (``history=False``)."""

    def __init__(self, name: str, split: str | None, interval_s: float, *, history: bool) -> None:
        self.name, self.split, self.interval_s = name, split, interval_s
        self.history = history
        self.calls = 0
        self.step = 0
        self.total: Any = 0.0
        self.count = 0
        self.last_sent = 0.0

    def add(self, value: Any, step: int | None = None) -> None:
        self.calls += 1
        self.step = self.calls if step is None else step
        self.total = self.total + value
        self.count += 1
        now = time.monotonic()
        # Every step of a short training shows on the chart; past FULL_DETAIL_STEPS, one point
        # per interval (the mean since the last), so a long loop cannot flood the stream.
        if self.calls <= FULL_DETAIL_STEPS or now - self.last_sent >= self.interval_s:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if not self.count:
            return
        total = self.total.item() if hasattr(self.total, "item") else float(self.total)
        value = total / self.count
        self.total, self.count = 0.0, 0
        self.last_sent = time.monotonic() if now is None else now
        if self.history:
            dojo._history.setdefault((self.name, self.split), []).append((self.step, value))
        send_metric(self.name, self.step, value, self.split)


# Losses captured automatically, per (name, split); report()'s curves, per (name, split).
_curves: dict[tuple[str, str | None], Curve] = {}
_reported: dict[tuple[str, str | None], Curve] = {}
_not_finite: set[tuple[str, str | None]] = set()


def send_metric(name: str, step: int, value: float, split: str | None) -> None:
    if value != value or value in (float("inf"), float("-inf")):
        # JSON has no NaN: say so in the console (once per curve) instead of dropping the point
        # silently.
        if (name, split) not in _not_finite:
            _not_finite.add((name, split))
            notice(f"{name} is {value} at step {step}")
        return
    message: dict[str, Any] = {"type": "metric", "name": name, "step": int(step), "value": value}
    if split:
        message["split"] = split
    send(message)


def flush_curves() -> None:
    for curve in (*_curves.values(), *_reported.values()):
        curve.flush()


def _on_loss(module: torch.nn.Module, inputs: Any, output: Any) -> None:
    if not isinstance(output, torch.Tensor) or output.numel() != 1:
        return  # reduction="none": not a single number to plot
    split = "train" if torch.is_grad_enabled() else "val"
    curve = _curves.get(("loss", split))
    if curve is None:
        curve = _curves[("loss", split)] = Curve("loss", split, METRIC_INTERVAL_S, history=True)
    curve.add(output.detach().float().reshape(()))


_original_loss_init = torch.nn.modules.loss._Loss.__init__


def _capturing_loss_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original_loss_init(self, *args, **kwargs)
    self.register_forward_hook(_on_loss)


def _report_sink(name: str, step: int | None, value: float, split: str | None) -> None:
    """report(): throttled like the captured losses (dojo.report has kept the value itself)."""
    curve = _reported.get((name, split))
    if curve is None:
        curve = _reported[(name, split)] = Curve(name, split, METRIC_INTERVAL_S, history=False)
    curve.add(value, step)


# --- figures -----------------------------------------------------------------------------------

_figures = {"sent": 0, "cap": 20}


def open_figures() -> bool:
    """Whether the code left figures open (shown at the end, as a notebook would)."""
    return bool(plt.get_fignums())


def send_open_figures() -> None:
    for number in plt.get_fignums():
        figure = plt.figure(number)
        if _figures["sent"] >= _figures["cap"]:
            notice(f"only the first {_figures['cap']} figures are shown")
        else:
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
            data = base64.b64encode(buffer.getvalue()).decode()
            send({"type": "figure", "format": "png", "data": data})
            _figures["sent"] += 1
        plt.close(figure)


def _show(*args: Any, **kwargs: Any) -> None:
    send_open_figures()


def install(*, figure_cap: int) -> None:
    """Start capturing, for this job: loss modules, report(), plt.show()."""
    torch.nn.modules.loss._Loss.__init__ = _capturing_loss_init  # type: ignore[method-assign]
    dojo._metric_sink = _report_sink
    plt.show = _show
    _figures["cap"] = figure_cap


# --- the model summary -------------------------------------------------------------------------


def send_summary(namespace: dict[str, Any], spec: dict[str, Any]) -> None:
    factory_name = spec["factory"]
    target = namespace.get(factory_name)
    try:
        if target is None:
            raise LookupError(f"your code defines no `{factory_name}`")
        model = target if isinstance(target, torch.nn.Module) else target()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"`{factory_name}()` returned {type(model).__name__}, not an nn.Module")
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        result = torchinfo.summary(
            model, input_size=tuple(spec["input_size"]), verbose=0, device=device
        )
    except Exception as exc:  # the learner's model: any failure is theirs to read, not ours
        # torchinfo wraps the model's own error ("Failed to run torchinfo. See above stack
        # traces…", with no traces shown): the learner needs the error underneath.
        cause: BaseException = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        notice(f"no model summary: {type(cause).__name__}: {cause}")
        return
    rows = []
    for layer in result.summary_list:
        params = int(layer.leftover_params())
        rows.append(
            {
                "depth": int(layer.depth),
                "name": str(layer.var_name),
                "type": str(layer.class_name),
                "output_shape": layer.output_size or None,
                "params": params,
                "trainable": int(layer.leftover_trainable_params()) == params,
            }
        )
    send(
        {
            "type": "summary",
            "model": type(model).__name__,
            "input_size": list(spec["input_size"]),
            "rows": rows,
            "total_params": int(result.total_params),
            "trainable_params": int(result.trainable_params),
        }
    )
