"""Checks for "Gradients by hand and by backward()".

PYTEST_DONT_REWRITE: a failed check shows the learner our message, not pytest's
expression dump.

`submission` is the learner's script after it ran: its global variables are attributes.
A check named test_todoN_... is tied to TODO N: the untouched starter must fail it.
Every check fails with an assert and a message, never an AttributeError.
"""

import torch
from dojo import check

N_EXAMPLES = 8
N_FEATURES = 3


def _value(submission, name, todo):
    value = getattr(submission, name, None)
    assert value is not None, (
        f"`{name}` is missing: keep the variable the starter defines (TODO {todo})."
    )
    return value


def _tensor(submission, name, todo):
    value = _value(submission, name, todo)
    assert isinstance(value, torch.Tensor), (
        f"`{name}` is a {type(value).__name__}, not a torch tensor (TODO {todo})."
    )
    return value


def _data(submission):
    """The original numpy data as float32 tensors: what X and y should hold."""
    X_np = _value(submission, "X_np", 1)
    y_np = _value(submission, "y_np", 1)
    return torch.as_tensor(X_np).float(), torch.as_tensor(y_np).float()


def _parameters(submission):
    w = _tensor(submission, "w", 2).detach().float().reshape(-1)
    b = _tensor(submission, "b", 2).detach().float().reshape(())
    assert w.numel() == N_FEATURES, f"`w` should hold {N_FEATURES} weights, one per feature."
    return w, b


def _expected_gradients(submission):
    """dL/dw and dL/db worked out from the formulas, for the learner's own w and b."""
    X, y = _data(submission)
    w, b = _parameters(submission)
    error = X @ w + b - y
    return 2 / len(X) * (X.T @ error), 2 / len(X) * error.sum()


def _close(actual, expected):
    return torch.allclose(
        torch.as_tensor(actual).detach().float(), expected, rtol=1e-3, atol=1e-4
    )


@check(
    "X and y are float32 tensors holding the data",
    hint="X = torch.tensor(X_np, dtype=torch.float32), and the same for y from y_np.",
)
def test_todo1_tensors(submission):
    X_data, y_data = _data(submission)
    X = _tensor(submission, "X", 1)
    y = _tensor(submission, "y", 1)
    assert X.dtype == torch.float32 and y.dtype == torch.float32, (
        f"X is {X.dtype} and y is {y.dtype}: both should be torch.float32 "
        "(pass dtype=torch.float32 to torch.tensor)."
    )
    assert list(X.shape) == [N_EXAMPLES, N_FEATURES], (
        f"X should have shape [{N_EXAMPLES}, {N_FEATURES}] (examples, features), "
        f"but it has {list(X.shape)}."
    )
    assert list(y.shape) == [N_EXAMPLES], (
        f"y should have shape [{N_EXAMPLES}], one target per example, but it has {list(y.shape)}."
    )
    assert torch.allclose(X, X_data) and torch.allclose(y, y_data), (
        "X and y do not hold the numbers of X_np and y_np yet: build them from those arrays."
    )


@check(
    "w and b track their gradients",
    hint="Add requires_grad=True: w = torch.tensor([0.5, -1.0, 2.0], requires_grad=True), "
    "and the same for b = torch.tensor(0.0, ...).",
)
def test_todo2_requires_grad(submission):
    w = _tensor(submission, "w", 2)
    b = _tensor(submission, "b", 2)
    assert w.requires_grad, "w.requires_grad is False: create w with requires_grad=True."
    assert b.requires_grad, "b.requires_grad is False: create b with requires_grad=True."
    assert w.is_leaf and b.is_leaf, (
        "w and b should be created directly with requires_grad=True, not computed from "
        "other tensors: autograd only keeps .grad for tensors you created yourself."
    )
    assert w.numel() == N_FEATURES and b.numel() == 1, (
        f"w should hold {N_FEATURES} weights and b a single number, but w has shape "
        f"{list(w.shape)} and b has shape {list(b.shape)}."
    )


@check(
    "The predictions are X @ w + b, one per example",
    hint="y_hat = X @ w + b gives shape [8]. A shape of [8, 1] or [8, 8] means a reshape "
    "or broadcasting went wrong.",
)
def test_todo3_predictions(submission):
    X, _ = _data(submission)
    w, b = _parameters(submission)
    y_hat = _tensor(submission, "y_hat", 3)
    assert list(y_hat.shape) == [N_EXAMPLES], (
        f"y_hat should have shape [{N_EXAMPLES}], one prediction per example, "
        f"but it has {list(y_hat.shape)}."
    )
    assert _close(y_hat, X @ w + b), (
        "y_hat does not hold X @ w + b yet: multiply the data by the weights (with @) "
        "and add the bias."
    )


@check(
    "The loss is the mean squared error",
    hint="loss = ((y_hat - y) ** 2).mean(): square each error, then average over the 8 examples.",
)
def test_todo3_loss(submission):
    X, y = _data(submission)
    w, b = _parameters(submission)
    loss = _tensor(submission, "loss", 3)
    assert loss.numel() == 1, (
        f"loss should be a single number, but it has shape {list(loss.shape)}: "
        "did y_hat and y broadcast to a matrix? Check their shapes."
    )
    expected = ((X @ w + b - y) ** 2).mean()
    assert _close(loss.reshape(()), expected), (
        f"loss is {loss.item():.4f}, but the mean squared error of these predictions is "
        f"{expected.item():.4f}."
    )
    assert loss.requires_grad, (
        "loss has no gradient history: compute it from y_hat, which comes from w and b "
        "(finish TODO 2 first)."
    )


@check(
    "Your gradients by hand are right",
    hint="Under torch.no_grad(): error = y_hat - y, grad_w_by_hand = 2 / N * (X.T @ error), "
    "grad_b_by_hand = 2 / N * error.sum().",
)
def test_todo4_by_hand(submission):
    expected_w, expected_b = _expected_gradients(submission)
    grad_w = _tensor(submission, "grad_w_by_hand", 4)
    grad_b = _tensor(submission, "grad_b_by_hand", 4)
    assert grad_w.numel() == N_FEATURES, (
        f"grad_w_by_hand should hold one number per weight ({N_FEATURES}), "
        f"but it has shape {list(grad_w.shape)}: use X.T @ error, not X @ ... ."
    )
    assert _close(grad_w.reshape(-1), expected_w), (
        f"grad_w_by_hand is {grad_w.detach().reshape(-1).tolist()}, but dL/dw is "
        f"{[round(v, 4) for v in expected_w.tolist()]}: check the formula 2/N * X^T (y_hat - y)."
    )
    assert grad_b.numel() == 1 and _close(grad_b.reshape(()), expected_b), (
        f"grad_b_by_hand should be {expected_b.item():.4f}: 2/N times the sum of the errors."
    )


@check(
    "backward() filled in w.grad and b.grad",
    hint="Call loss.backward() once, after the loss is computed; then w.grad and b.grad hold "
    "the gradients.",
)
def test_todo5_backward(submission):
    expected_w, expected_b = _expected_gradients(submission)
    w = _tensor(submission, "w", 2)
    b = _tensor(submission, "b", 2)
    assert w.grad is not None and b.grad is not None, (
        "w.grad is None: autograd has not run yet. Call loss.backward()."
    )
    if _close(w.grad.reshape(-1), 2 * expected_w):
        raise AssertionError(
            "w.grad is twice the gradient: backward() ran twice and the gradients added up. "
            "Call it once (or zero the gradients in between)."
        )
    assert _close(w.grad.reshape(-1), expected_w) and _close(b.grad.reshape(()), expected_b), (
        "w.grad and b.grad are not the gradients of the mean squared error: compute the loss "
        "as in TODO 3, then call loss.backward()."
    )
