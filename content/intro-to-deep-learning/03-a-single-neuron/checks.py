"""Checks for "Gradient Descent by Hand".

PYTEST_DONT_REWRITE: a failed check shows the learner our message, not pytest's
expression dump.

`submission` is the learner's script after it ran: its global variables are attributes.
A check named test_todoN_... is tied to TODO N: the untouched starter must fail it.
Every check fails with an assert and a message, never an AttributeError.
"""

import torch
from dojo import check, history
from torch import nn

TRUE_WEIGHTS = [2.0, -3.0, 0.5]
TRUE_BIAS = 1.0
TOLERANCE = 0.05


def _model(submission):
    model = getattr(submission, "model", None)
    assert isinstance(model, nn.Linear) and model.out_features == 1, (
        "`model` should be the single neuron build_model() gives: nn.Linear(N_FEATURES, 1). "
        "Keep the line model = build_model()."
    )
    return model


def _losses(submission):
    kept = getattr(submission, "losses", None)
    values = [float(v) for v in kept] if isinstance(kept, list | tuple) else []
    # Loss modules are also captured automatically for the live chart.
    return values or history("loss")


def _tensor(submission, name, todo):
    value = getattr(submission, name, None)
    assert value is not None, f"`{name}` is missing: keep the variable from TODO {todo}."
    try:
        return torch.as_tensor(value).detach().float()
    except (TypeError, ValueError, RuntimeError):
        raise AssertionError(f"`{name}` should be a number or a tensor (TODO {todo}).") from None


@check(
    "The predictions come from the neuron",
    hint="Inside the loop: predictions = model(X), then loss = loss_fn(predictions, y).",
)
def test_todo1_predictions(submission):
    predictions = getattr(submission, "predictions", None)
    assert isinstance(predictions, torch.Tensor), "`predictions` should be a tensor: model(X)."
    y = getattr(submission, "y", None)
    expected = list(y.shape) if isinstance(y, torch.Tensor) else [200, 1]
    assert list(predictions.shape) == expected, (
        f"predictions has shape {list(predictions.shape)}, but y has shape {expected}: "
        "the loss compares them number by number, so the shapes must match."
    )
    assert predictions.requires_grad, (
        "predictions does not depend on the model's weights, so no gradient can flow back to "
        "them: compute predictions = model(X)."
    )


@check(
    "Backpropagation computed the gradients",
    hint="Call loss.backward() in every epoch, after the loss and before the update.",
)
def test_todo2_gradients(submission):
    model = _model(submission)
    values = _losses(submission)
    fell = len(values) >= 2 and values[-1] < values[0]
    assert model.weight.grad is not None or fell, (
        "model.weight.grad is None: no gradient was ever computed. Call loss.backward()."
    )


@check(
    "The loss falls to almost nothing",
    hint="In torch.no_grad(): parameter -= LEARNING_RATE * parameter.grad, then "
    "parameter.grad.zero_(), for every parameter in model.parameters().",
)
def test_todo3_loss_falls(submission):
    values = _losses(submission)
    assert len(values) >= 2, (
        "Fewer than two losses were recorded: keep losses.append(loss.item()) in the loop."
    )
    first, last = values[0], values[-1]
    assert last == last and last < 0.05 * first, (
        f"The loss went from {first:.4f} to {last:.4f}; it should fall to under 5% of where it "
        "started. If it stays flat, the weights are never updated; if it grows or becomes nan, "
        "the learning rate is too large or the gradients are not zeroed after each step."
    )


@check(
    "The neuron found the true weights",
    hint="Train with the update of TODO 3 for the 60 epochs, with LEARNING_RATE = 0.1.",
)
def test_todo3_true_weights(submission):
    model = _model(submission)
    weights = model.weight.detach().reshape(-1)
    bias = model.bias.detach().item() if model.bias is not None else 0.0
    target = torch.tensor(TRUE_WEIGHTS)
    assert weights.numel() == len(TRUE_WEIGHTS) and torch.allclose(
        weights, target, atol=TOLERANCE
    ), (
        f"The neuron's weights are {[round(w, 3) for w in weights.tolist()]}, but the data "
        f"follows {TRUE_WEIGHTS}: train until they are within {TOLERANCE} of them."
    )
    assert abs(bias - TRUE_BIAS) < TOLERANCE, (
        f"The neuron's bias is {bias:.3f}, but the data follows a bias of {TRUE_BIAS}."
    )


@check(
    "You updated the weights yourself, without an optimizer",
    hint="This lesson is gradient descent by hand: remove torch.optim and write the update "
    "in torch.no_grad().",
)
def test_no_optimizer(submission):
    used = [
        name
        for name, value in vars(submission).items()
        if isinstance(value, torch.optim.Optimizer)
    ]
    assert not used, (
        f"`{used[0]}` is a torch.optim optimizer. It would do the update for you; here, write "
        "it by hand to see what an optimizer does."
    )


@check(
    "You read the learned weights and bias",
    hint="learned_weights = model.weight.detach().reshape(-1) and learned_bias = "
    "model.bias.item().",
)
def test_todo4_learned_values(submission):
    model = _model(submission)
    weights = _tensor(submission, "learned_weights", 4).reshape(-1)
    bias = _tensor(submission, "learned_bias", 4)
    assert weights.numel() == model.in_features and torch.allclose(
        weights, model.weight.detach().reshape(-1)
    ), (
        f"learned_weights is {weights.tolist()}, but the model's weights are "
        f"{model.weight.detach().reshape(-1).tolist()}: read them from model.weight."
    )
    assert bias.numel() == 1 and torch.allclose(bias.reshape(-1), model.bias.detach()), (
        "learned_bias is not the model's bias: read it with model.bias.item()."
    )


@check(
    "Your prediction by hand matches the neuron's",
    hint="by_hand = (x_new * learned_weights).sum() + learned_bias: each input times its "
    "weight, summed, plus the bias.",
)
def test_todo4_by_hand(submission):
    model = _model(submission)
    x_new = _tensor(submission, "x_new", 4).reshape(1, -1)
    by_hand = _tensor(submission, "by_hand", 4)
    with torch.no_grad():
        expected = model(x_new).item()
    assert by_hand.numel() == 1, (
        f"by_hand should be a single number, but it has shape {list(by_hand.shape)}: "
        "add up the products with .sum()."
    )
    assert abs(by_hand.item() - expected) < 1e-3, (
        f"by_hand is {by_hand.item():.4f}, but the neuron says {expected:.4f} for x_new."
    )
