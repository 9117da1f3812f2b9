"""Checks for "Give the Network Its Non-Linearity".

PYTEST_DONT_REWRITE: a failed check shows the learner our message, not pytest's
expression dump.

`submission` is the learner's script after it ran: its global variables are attributes.
A check named test_todoN_... is tied to TODO N: the untouched starter must fail it.
Every check fails with an assert and a message, never an AttributeError.
"""

import torch
from dojo import check
from torch import nn

N_FEATURES = 2

# Activation functions as PyTorch names them when they run (modules call these too).
ACTIVATIONS = {
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "prelu", "rrelu", "elu", "elu_",
    "selu", "celu", "gelu", "silu", "mish", "sigmoid", "tanh", "softplus", "softsign",
    "hardtanh", "hardtanh_", "hardswish", "hardsigmoid", "logsigmoid", "tanhshrink", "glu",
}


def _module(submission, name, how):
    model = getattr(submission, name, None)
    assert isinstance(model, nn.Module), (
        f"There is no `{name}` that is an nn.Module: keep the line `{name} = {how}`."
    )
    return model


def _test_set(submission):
    X_test = getattr(submission, "X_test", None)
    y_test = getattr(submission, "y_test", None)
    assert X_test is not None and y_test is not None, (
        "X_test or y_test is missing: keep the data preparation the starter gives."
    )
    return torch.as_tensor(X_test).float(), torch.as_tensor(y_test).float().reshape(-1, 1)


def _forward(model, x):
    """The model's output for ``x``, or a failed check saying why it could not run."""
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    except Exception as exc:  # the learner's forward pass: report, don't crash the check
        raise AssertionError(
            f"The model could not process a batch of shape {list(x.shape)}: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _accuracy(model, X, y):
    scores = _forward(model, X)
    assert isinstance(scores, torch.Tensor) and scores.numel() == len(y), (
        "The model should give one score per point."
    )
    return ((scores.reshape(-1, 1) > 0).float() == y).float().mean().item()


def _op_names(model, x):
    """The names of the torch operations one forward pass runs, in order."""
    names = []

    class Recorder(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            names.append(getattr(func, "__name__", ""))
            return func(*args, **(kwargs or {}))

    with Recorder():
        _forward(model, x)
    return names


def _gaps_without_activation(model):
    """The numbers of the layer pairs with nothing non-linear between them."""
    names = _op_names(model, torch.zeros(2, N_FEATURES))
    layers = [i for i, name in enumerate(names) if name == "linear"]
    return [
        number
        for number, (a, b) in enumerate(zip(layers, layers[1:], strict=False), start=1)
        if not ACTIVATIONS & set(names[a + 1 : b])
    ], len(layers)


@check(
    "There is an activation after each hidden layer",
    hint="nn.Sequential(nn.Linear(2, HIDDEN), ACTIVATION(), nn.Linear(HIDDEN, HIDDEN), "
    "ACTIVATION(), nn.Linear(HIDDEN, 1))",
)
def test_todo1_activations(submission):
    gaps, layers = _gaps_without_activation(_module(submission, "model", "build_model()"))
    assert layers >= 2, "build_model() should stack at least two nn.Linear layers."
    assert not gaps, (
        f"Nothing non-linear runs between layer {gaps[0]} and layer {gaps[0] + 1}: two linear "
        "layers in a row collapse into one. Put ACTIVATION() between them."
    )


@check(
    "The network has at least two hidden layers",
    hint="Keep three nn.Linear layers: 2 -> HIDDEN -> HIDDEN -> 1.",
)
def test_deep(submission):
    model = _module(submission, "model", "build_model()")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) >= 3, (
        f"The model has {len(linears)} nn.Linear layer(s); two hidden layers and an output "
        "layer take at least 3."
    )
    output = _forward(model, torch.zeros(5, N_FEATURES))
    assert isinstance(output, torch.Tensor) and list(output.shape) == [5, 1], (
        "The model should take 2 numbers per point and give 1 score: for 5 points, shape "
        f"[5, 1], not {list(getattr(output, 'shape', []))}."
    )


@check(
    "The network tells the rings apart",
    hint="With an activation after each hidden layer (TODO 1), the 200 epochs of training "
    "reach over 90% test accuracy.",
)
def test_todo1_accuracy(submission):
    X_test, y_test = _test_set(submission)
    accuracy = _accuracy(_module(submission, "model", "build_model()"), X_test, y_test)
    assert accuracy >= 0.9, (
        f"The network gets {accuracy:.0%} of the test points right; it should get at least "
        "90%. Without activations it can only draw a straight line between the classes."
    )


@check(
    "The linear-only network stays linear, for comparison",
    hint="Leave build_linear_model() as the starter has it: three nn.Linear layers and "
    "nothing between them.",
)
def test_linear_model_is_linear(submission):
    linear_model = _module(submission, "linear_model", "build_linear_model()")
    gaps, layers = _gaps_without_activation(linear_model)
    assert layers >= 2 and len(gaps) == layers - 1, (
        "linear_model has activations now: keep it purely linear, so you can see what the "
        "activations change."
    )
    X_test, y_test = _test_set(submission)
    accuracy = _accuracy(linear_model, X_test, y_test)
    assert accuracy < 0.75, (
        f"The linear-only network gets {accuracy:.0%} right: it should do no better than a "
        "straight line can on two rings."
    )


@check(
    "accuracy() counts the right predictions",
    hint="predictions = (logits > 0).float(), then return "
    "(predictions == targets).float().mean().item().",
)
def test_todo2_accuracy_function(submission):
    accuracy = getattr(submission, "accuracy", None)
    assert callable(accuracy), "`accuracy` should be the function the starter defines."
    logits = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]])
    targets = torch.tensor([[1.0], [1.0], [0.0], [0.0]])
    try:
        half = accuracy(logits, targets)
        all_right = accuracy(logits, torch.tensor([[1.0], [0.0], [1.0], [0.0]]))
    except Exception as exc:  # the learner's function: report, don't crash the check
        raise AssertionError(f"accuracy() stopped with {type(exc).__name__}: {exc}") from None
    assert isinstance(half, float | int) or (
        isinstance(half, torch.Tensor) and half.numel() == 1
    ), f"accuracy() should return a single number, not a {type(half).__name__}."
    assert abs(float(all_right) - 1.0) < 1e-6, (
        f"For scores [2, -1, 0.5, -3] and targets [1, 0, 1, 0] every prediction is right, but "
        f"accuracy() says {float(all_right)}: a score above 0 predicts class 1."
    )
    assert abs(float(half) - 0.5) < 1e-6, (
        f"For scores [2, -1, 0.5, -3] and targets [1, 1, 0, 0] half the predictions are "
        f"right, but accuracy() says {float(half)}."
    )


@check(
    "The three linear layers collapse into one",
    hint="W_combined = third.weight @ second.weight @ first.weight and b_combined = "
    "third.weight @ (second.weight @ first.bias + second.bias) + third.bias",
)
def test_todo3_collapse(submission):
    linear_model = _module(submission, "linear_model", "build_linear_model()")
    W = getattr(submission, "W_combined", None)
    b = getattr(submission, "b_combined", None)
    assert isinstance(W, torch.Tensor) and isinstance(b, torch.Tensor), (
        "W_combined and b_combined should be tensors (TODO 3)."
    )
    assert W.numel() == N_FEATURES and b.numel() == 1, (
        f"W_combined should have shape [1, 2] and b_combined shape [1], but they have "
        f"{list(W.shape)} and {list(b.shape)}: multiply the weights in the order W3 @ W2 @ W1."
    )
    X_test, _ = _test_set(submission)
    expected = _forward(linear_model, X_test).reshape(-1)
    got = (X_test @ W.detach().reshape(-1) + b.detach().reshape(())).reshape(-1)
    assert torch.allclose(got, expected, atol=1e-4), (
        "X @ W_combined.T + b_combined does not give the three layers' outputs yet. "
        "W_combined = W3 @ W2 @ W1, and the bias picks up b1 and b2 on the way: "
        "W3 @ (W2 @ b1 + b2) + b3."
    )
