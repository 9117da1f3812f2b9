"""Checks for "Build a Small CNN".

PYTEST_DONT_REWRITE: a failed check shows the learner our message, not pytest's
expression dump.

`submission` is the learner's script after it ran: its global variables are attributes.
A check named test_todoN_... is tied to TODO N: the untouched starter must fail it.
Every check fails with an assert and a message, never an AttributeError.
"""

import torch
from dojo import check, history
from torch import nn

N_CLASSES = 10
IMAGE = [1, 8, 8]  # channels, height, width
ACCURACY_TARGET = 0.9

# Activation functions as PyTorch names them when they run (modules call these too).
ACTIVATIONS = {
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "prelu", "rrelu", "elu", "elu_",
    "selu", "celu", "gelu", "silu", "mish", "sigmoid", "tanh", "softplus", "softsign",
    "hardtanh", "hardtanh_", "hardswish", "hardsigmoid", "logsigmoid", "tanhshrink", "glu",
}


def _model(submission):
    model = getattr(submission, "model", None)
    assert isinstance(model, nn.Module), (
        "There is no `model` that is an nn.Module: keep the line `model = build_model()`."
    )
    return model


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


def _convolutions(submission):
    convs = [m for m in _model(submission).modules() if isinstance(m, nn.Conv2d)]
    assert convs, (
        "The model has no nn.Conv2d layer yet: build the convolution blocks of TODO 2."
    )
    return convs


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


@check(
    "The images have the shape [N, 1, 8, 8]",
    hint="X_train = X_train.reshape(-1, 1, 8, 8), and the same for X_test.",
)
def test_todo1_image_shape(submission):
    for name in ("X_train", "X_test"):
        images = getattr(submission, name, None)
        assert isinstance(images, torch.Tensor), f"`{name}` should be a tensor of images."
        assert images.ndim == 4 and list(images.shape[1:]) == IMAGE, (
            f"{name} has shape {list(images.shape)}; a convolution wants "
            f"[images, channels, height, width], here [N, {', '.join(map(str, IMAGE))}]."
        )


@check(
    "The network is convolutional",
    hint="Start build_model() with nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(), "
    "nn.MaxPool2d(2).",
)
def test_todo2_convolutions(submission):
    convs = _convolutions(submission)
    assert convs[0].in_channels == IMAGE[0], (
        f"The first convolution takes {convs[0].in_channels} channels, but the images have "
        f"{IMAGE[0]} (grey): nn.Conv2d(1, ...)."
    )
    model = _model(submission)
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d | nn.AvgPool2d)]
    assert pools, "There is no pooling layer: add nn.MaxPool2d(2) after each convolution block."
    names = _op_names(model, torch.zeros(2, *IMAGE))
    layers = [i for i, name in enumerate(names) if name in ("conv2d", "linear")]
    for a, b in zip(layers, layers[1:], strict=False):
        if names[a] == "conv2d":
            assert ACTIVATIONS & set(names[a + 1 : b]), (
                "A convolution is followed by the next layer with nothing non-linear in "
                "between: put nn.ReLU() after each nn.Conv2d."
            )


@check(
    "It takes 1x8x8 images and gives 10 scores",
    hint="End with nn.Flatten() and nn.Linear(32 * 2 * 2, N): after two MaxPool2d(2), "
    "32 maps of 2x2 are left, and the last layer gives 10 scores.",
)
def test_shapes(submission):
    output = _forward(_model(submission), torch.zeros(5, *IMAGE))
    assert isinstance(output, torch.Tensor) and list(output.shape) == [5, N_CLASSES], (
        f"For 5 images the model should give 5 rows of {N_CLASSES} scores, but it gave "
        f"shape {list(getattr(output, 'shape', []))}."
    )


@check(
    "The training loss falls",
    hint="For each minibatch: optimizer.zero_grad(), loss.backward(), optimizer.step().",
)
def test_todo3_loss_falls(submission):
    values = history("loss")
    assert len(values) >= 10, (
        "Fewer than 10 training losses reached the chart: keep the training loop and its "
        "loss = loss_fn(model(xb), yb)."
    )
    k = max(1, len(values) // 5)  # compare averages, so one noisy minibatch does not decide
    first, last = sum(values[:k]) / k, sum(values[-k:]) / k
    assert first - last > 0.5 * abs(first), (
        f"The training loss went from about {first:.3f} to {last:.3f}: it should fall to "
        "less than half. Does optimizer.step() run for every minibatch?"
    )


@check(
    "The CNN reads digits it has never seen",
    hint="With the convolution blocks (TODO 2) and the training step (TODO 3), 8 epochs reach "
    "over 90% test accuracy.",
)
def test_todo3_accuracy(submission):
    X_test = getattr(submission, "X_test", None)
    y_test = getattr(submission, "y_test", None)
    assert X_test is not None and y_test is not None, (
        "X_test or y_test is missing: keep the data preparation the starter gives."
    )
    images = torch.as_tensor(X_test).float().reshape(-1, *IMAGE)
    scores = _forward(_model(submission), images)
    labels = torch.as_tensor(y_test).long()
    assert isinstance(scores, torch.Tensor) and list(scores.shape) == [len(labels), N_CLASSES], (
        f"The model should give {N_CLASSES} scores for each test image."
    )
    accuracy = (scores.argmax(dim=1) == labels).float().mean().item()
    assert accuracy >= ACCURACY_TARGET, (
        f"The CNN gets {accuracy:.0%} of the test digits right; it should get at least "
        f"{ACCURACY_TARGET:.0%}."
    )


@check(
    "You counted what weight sharing saves",
    hint="conv_params = sum(p.numel() for p in model[0].parameters()) and dense_params = "
    "sum(p.numel() for p in nn.Linear(64, 16 * 8 * 8).parameters()).",
)
def test_todo4_parameter_counts(submission):
    first = _convolutions(submission)[0]
    expected_conv = sum(p.numel() for p in first.parameters())
    conv_params = getattr(submission, "conv_params", None)
    assert conv_params == expected_conv, (
        f"conv_params is {conv_params}, but the first convolution has {expected_conv} "
        f"parameters: {first.out_channels} filters of {first.in_channels}x"
        f"{'x'.join(map(str, first.kernel_size))} weights, plus one bias each."
    )
    with torch.no_grad():
        outputs = first(torch.zeros(1, *IMAGE)).numel()  # e.g. 16 maps of 8x8 = 1024
    pixels = IMAGE[1] * IMAGE[2]
    expected_dense = pixels * outputs + outputs
    dense_params = getattr(submission, "dense_params", None)
    assert dense_params == expected_dense, (
        f"dense_params is {dense_params}, but a linear layer from the {pixels} pixels to the "
        f"first convolution's {outputs} outputs has {pixels} x {outputs} weights plus "
        f"{outputs} biases = {expected_dense}: nn.Linear({pixels}, {outputs})."
    )
