"""Checks for "Build Your First Deep Learning Model".

PYTEST_DONT_REWRITE: a failed check shows the learner our message, not pytest's
expression dump.

`submission` is the learner's script after it ran: its global variables are attributes.
A check named test_todoN_... is tied to TODO N: the untouched starter must fail it.
Every check fails with an assert and a message, never an AttributeError, whatever state
the learner's code is in.
"""

import ast

import torch
from dojo import check, history
from torch import nn

N_FEATURES = 64
N_CLASSES = 10

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


def _tensor(submission, name):
    value = getattr(submission, name, None)
    assert value is not None, f"`{name}` is missing: keep the data preparation the starter gives."
    return torch.as_tensor(value)


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


def _losses(submission):
    kept = getattr(submission, "losses", None)
    values = [float(v) for v in kept] if isinstance(kept, list | tuple) else []
    # Loss modules are also captured automatically for the live chart.
    return values or history("loss")


@check(
    "The features are standardised",
    hint="Fit a StandardScaler on X_train only, then transform both X_train and X_test with it.",
)
def test_todo1_standardised(submission):
    X_train = _tensor(submission, "X_train").float()
    X_test = _tensor(submission, "X_test").float()
    assert X_train.ndim == 2 and X_train.shape[1] == N_FEATURES, (
        f"X_train should hold one row of {N_FEATURES} pixels per image, "
        f"but its shape is {list(X_train.shape)}."
    )
    means = X_train.mean(dim=0)
    stds = X_train.std(dim=0)
    assert means.abs().max() < 0.05, (
        f"The training pixels have an average of {X_train.mean():.2f}, not 0: "
        "X_train is not standardised yet."
    )
    assert stds.max() < 1.1, (
        f"Some training pixels have a standard deviation of {stds.max():.2f}, not 1."
    )
    assert X_test.mean().abs() < 0.3 and X_test.std() < 2, (
        "X_train is standardised but X_test is not: transform X_test with the same scaler, "
        "so the model sees test images on the same scale."
    )


@check(
    "The network has at least two hidden layers",
    hint="In __init__, create at least 3 nn.Linear layers: input -> hidden -> hidden -> output.",
)
def test_todo2_hidden_layers(submission):
    linears = [m for m in _model(submission).modules() if isinstance(m, nn.Linear)]
    assert len(linears) >= 3, (
        f"The model has {len(linears)} nn.Linear layer(s). An input layer, two hidden layers "
        "and an output layer take at least 3: nn.Linear(64, ...), nn.Linear(..., ...), "
        "nn.Linear(..., 10)."
    )


@check(
    "The forward pass runs every layer and gives 10 scores",
    hint="In forward(), pass x through every layer in order, e.g. x = self.relu(self.hidden1(x)), "
    "and return the output layer's result.",
)
def test_todo3_forward_pass(submission):
    model = _model(submission)
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    ran = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=name: ran.append(n)) for name, m in layers]
    try:
        output = _forward(model, torch.zeros(5, N_FEATURES))
    finally:
        for hook in hooks:
            hook.remove()
    unused = [name for name, _ in layers if name not in ran]
    assert not unused, (
        f"The forward pass never uses {', '.join(unused)}: pass x through every layer you made."
    )
    assert len(set(ran)) >= 3, (
        f"The forward pass runs {len(set(ran))} layer(s). Pass x through the input layer, "
        "both hidden layers and the output layer, one after the other."
    )
    assert isinstance(output, torch.Tensor), "forward() should return a tensor of scores."
    assert list(output.shape) == [5, N_CLASSES], (
        f"For 5 images the model should give 5 rows of {N_CLASSES} scores, "
        f"but it gave shape {list(output.shape)}: return the output layer's result."
    )


@check(
    "There is an activation function between the layers",
    hint="In forward(), apply the activation, self.relu(...) with self.relu = nn.ReLU() made in "
    "__init__, to each layer's output except the last layer's.",
)
def test_todo3_activations(submission):
    names = _op_names(_model(submission), torch.zeros(2, N_FEATURES))
    layers = [i for i, name in enumerate(names) if name == "linear"]
    assert len(layers) >= 2, (
        "The forward pass runs only one layer, so there is nothing to put an activation "
        "between yet: finish TODO 2 and TODO 3 first."
    )
    for number, (a, b) in enumerate(zip(layers, layers[1:], strict=False), start=1):
        assert ACTIVATIONS & set(names[a + 1 : b]), (
            f"Nothing non-linear runs between layer {number} and layer {number + 1}. Two linear "
            "layers in a row are no better than one: put self.relu(...) (an nn.ReLU()) between them."
        )


@check(
    "The loss function suits classification",
    hint="For 10 classes use loss_fn = nn.CrossEntropyLoss(); it takes the raw scores.",
)
def test_todo4_loss_function(submission):
    loss_fn = getattr(submission, "loss_fn", None)
    assert loss_fn is not None, "loss_fn is still None: choose a loss function (TODO 4)."
    if isinstance(loss_fn, nn.NLLLoss):
        output = _forward(_model(submission), torch.zeros(3, N_FEATURES))
        assert torch.allclose(output.exp().sum(dim=1), torch.ones(3), atol=1e-3), (
            "nn.NLLLoss expects log-probabilities: end the model with nn.LogSoftmax(dim=1), "
            "or use nn.CrossEntropyLoss on the raw scores."
        )
        return
    assert isinstance(loss_fn, nn.CrossEntropyLoss), (
        f"loss_fn is {type(loss_fn).__name__}, which does not measure how well the model picks "
        "one class out of 10. Use nn.CrossEntropyLoss()."
    )


@check(
    "An optimizer updates the model's weights",
    hint="optimizer = torch.optim.Adam(model.parameters(), lr=0.01), after model = build_model().",
)
def test_todo4_optimizer(submission):
    optimizer = getattr(submission, "optimizer", None)
    assert optimizer is not None, "optimizer is still None: choose an optimizer (TODO 4)."
    assert isinstance(optimizer, torch.optim.Optimizer), (
        f"optimizer is a {type(optimizer).__name__}, not a torch.optim optimizer such as "
        "torch.optim.Adam or torch.optim.SGD."
    )
    updated = {id(p) for group in optimizer.param_groups for p in group["params"]}
    weights = list(_model(submission).parameters())
    assert weights and all(id(p) in updated for p in weights), (
        "The optimizer does not update all of `model`'s weights: create it with "
        "model.parameters() of the same model you train."
    )


@check(
    "The loss falls during training",
    hint="In each epoch call optimizer.zero_grad(), loss.backward() and optimizer.step(), "
    "and append loss.item() to losses.",
)
def test_todo5_loss_falls(submission):
    values = _losses(submission)
    assert values, (
        "No training loss was recorded: the training loop has not run a step yet "
        "(finish TODO 4 and TODO 5, and append each epoch's loss.item() to losses)."
    )
    assert len(values) >= 2, "Only one loss was recorded: train for several epochs."
    k = max(1, len(values) // 5)  # compare averages, so one noisy step does not decide
    first, last = sum(values[:k]) / k, sum(values[-k:]) / k
    # By a fifth of its size, not "below 0.8 * first": a wrong loss can be negative.
    assert first - last > max(0.2 * abs(first), 1e-6), (
        f"The loss went from {first:.3f} to {last:.3f}: it should fall clearly. Check that "
        "optimizer.step() runs in every epoch and the learning rate is not tiny."
    )


@check(
    "The model reads digits it has never seen",
    hint="Finish the training loop and train for the 30 epochs; aim for 90% test accuracy.",
)
def test_todo5_accuracy(submission):
    X_test = _tensor(submission, "X_test").float()
    y_test = _tensor(submission, "y_test").long()
    scores = _forward(_model(submission), X_test)
    assert isinstance(scores, torch.Tensor) and scores.shape == (len(y_test), N_CLASSES), (
        f"The model should give {N_CLASSES} scores for each test image."
    )
    accuracy = (scores.argmax(dim=1) == y_test).float().mean().item()
    assert accuracy >= 0.9, (
        f"The model gets {accuracy:.0%} of the test digits right; it should get at least 90%."
    )


def _source(submission):
    """The learner's code as they wrote it (the sandbox saves it as the module's file)."""
    try:
        with open(submission.__file__, encoding="utf-8") as file:
            return file.read()
    except (AttributeError, TypeError, OSError):
        return ""


def _shows_a_model(call, models):
    """Whether a call prints a model: print(model), print(f"{model}"), summary(model, ...)."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name not in ("print", "summary"):
        return False
    if name == "summary":  # torchinfo.summary(model, ...) prints the architecture itself
        return any(isinstance(arg, ast.Name) and arg.id in models for arg in call.args[:1])
    # model itself, not one of its attributes: print(model.parameters()) shows no layers.
    attributes = {id(node.value) for arg in call.args for node in ast.walk(arg)
                  if isinstance(node, ast.Attribute)}
    return any(
        isinstance(node, ast.Name) and node.id in models and id(node) not in attributes
        for arg in call.args
        for node in ast.walk(arg)
    )


def _calls_that_run(node):
    """Every call in the code outside function and class bodies (which may never run)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if isinstance(child, ast.Call):
            yield child
        yield from _calls_that_run(child)


@check(
    "You printed the model's architecture",
    hint="Add print(model) after training: it lists every layer with its sizes.",
)
def test_todo6_architecture_printed(submission):
    # The checks cannot read what the program printed, so they read the code: a print of the
    # model itself (or torchinfo's summary of it) outside any function, where it runs.
    models = {
        name
        for name, value in vars(submission).items()
        if isinstance(value, nn.Module) and any(isinstance(m, nn.Linear) for m in value.modules())
    }
    try:
        tree = ast.parse(_source(submission))
    except SyntaxError:
        tree = ast.Module(body=[], type_ignores=[])
    assert any(_shows_a_model(call, models) for call in _calls_that_run(tree)), (
        "Nothing prints the model yet: add a line print(model) to see its layers, "
        "in order, with their input and output sizes."
    )


@check(
    "You counted the trainable parameters",
    hint="total_params = sum(p.numel() for p in model.parameters() if p.requires_grad)",
)
def test_todo6_parameter_count(submission):
    expected = sum(p.numel() for p in _model(submission).parameters() if p.requires_grad)
    total = getattr(submission, "total_params", None)
    assert total == expected, (
        f"total_params is {total}, but the model has {expected} trainable parameters: "
        "add up p.numel() for every p in model.parameters()."
    )
