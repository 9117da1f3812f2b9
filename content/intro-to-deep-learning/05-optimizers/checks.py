"""Checks for "The Optimizer Race".

PYTEST_DONT_REWRITE: a failed check shows the learner our message, not pytest's
expression dump.

`submission` is the learner's script after it ran: its global variables are attributes.
A check named test_todoN_... is tied to TODO N: the untouched starter must fail it.
Every check fails with an assert and a message, never an AttributeError.
"""

import torch
from dojo import check
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

ADAM_LOSS_TARGET = 0.3
ACCURACY_TARGET = 0.9


def _model(submission, name):
    model = getattr(submission, name, None)
    assert isinstance(model, nn.Module), (
        f"There is no `{name}` that is an nn.Module: keep the line `{name} = build_model()`."
    )
    return model


def _optimizer(submission, name):
    optimizer = getattr(submission, name, None)
    assert isinstance(optimizer, torch.optim.Optimizer), (
        f"`{name}` should be a torch.optim optimizer, but it is {type(optimizer).__name__}."
    )
    return optimizer


def _updates(optimizer, model):
    """Whether ``optimizer`` updates every weight of ``model``."""
    updated = {id(p) for group in optimizer.param_groups for p in group["params"]}
    weights = list(model.parameters())
    return bool(weights) and all(id(p) in updated for p in weights)


def _epoch_losses(submission, name):
    values = getattr(submission, name, None)
    assert isinstance(values, list | tuple) and values, (
        f"`{name}` is empty: keep the line `{name} = fit(...)`, which trains the model."
    )
    return [float(v) for v in values]


def _test_accuracy(submission, model):
    X_test = getattr(submission, "X_test", None)
    y_test = getattr(submission, "y_test", None)
    assert X_test is not None and y_test is not None, (
        "X_test or y_test is missing: keep the data preparation the starter gives."
    )
    model.eval()
    try:
        with torch.no_grad():
            scores = model(torch.as_tensor(X_test).float())
    except Exception as exc:  # the learner's forward pass: report, don't crash the check
        raise AssertionError(f"The model could not run: {type(exc).__name__}: {exc}") from None
    return (scores.argmax(dim=1) == torch.as_tensor(y_test)).float().mean().item()


@check(
    "The training set comes in shuffled minibatches",
    hint="train_loader = DataLoader(TensorDataset(X_train, y_train), batch_size=BATCH_SIZE, "
    "shuffle=True)",
)
def test_todo1_dataloader(submission):
    loader = getattr(submission, "train_loader", None)
    assert isinstance(loader, DataLoader), (
        f"train_loader is a {type(loader).__name__}, not a DataLoader: build one from "
        "TensorDataset(X_train, y_train)."
    )
    assert loader.batch_size is not None and 8 <= loader.batch_size <= 256, (
        f"The batch size is {loader.batch_size}: pick a minibatch between 8 and 256 examples "
        "(32 is a good start)."
    )
    assert isinstance(loader.sampler, RandomSampler), (
        "The minibatches come in the same order every epoch: pass shuffle=True."
    )


@check(
    "SGD trains the first model",
    hint="sgd_optimizer = torch.optim.SGD(sgd_model.parameters(), lr=0.01)",
)
def test_todo2_sgd(submission):
    optimizer = _optimizer(submission, "sgd_optimizer")
    assert type(optimizer) is torch.optim.SGD, (
        f"sgd_optimizer is {type(optimizer).__name__}: use torch.optim.SGD."
    )
    assert _updates(optimizer, _model(submission, "sgd_model")), (
        "sgd_optimizer does not update sgd_model's weights: give it sgd_model.parameters()."
    )
    lr = optimizer.param_groups[0]["lr"]
    assert 0 < lr <= 1, f"SGD's learning rate is {lr}: it should be above 0, e.g. lr=0.01."


@check(
    "Adam trains the second model",
    hint="adam_optimizer = torch.optim.Adam(adam_model.parameters(), lr=0.001)",
)
def test_todo2_adam(submission):
    optimizer = _optimizer(submission, "adam_optimizer")
    assert isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW), (
        f"adam_optimizer is {type(optimizer).__name__}: use torch.optim.Adam."
    )
    sgd_model = getattr(submission, "sgd_model", None)
    adam_model = _model(submission, "adam_model")
    assert adam_model is not sgd_model, (
        "adam_model and sgd_model are the same network: keep the two build_model() calls, "
        "so each optimizer trains its own copy."
    )
    assert _updates(optimizer, adam_model), (
        "adam_optimizer does not update adam_model's weights: give it adam_model.parameters()."
    )
    lr = optimizer.param_groups[0]["lr"]
    assert 0 < lr <= 0.1, f"Adam's learning rate is {lr}: try lr=0.001."


@check(
    "Both loss curves fall",
    hint="In fit(), for each minibatch: optimizer.zero_grad(), loss.backward(), "
    "optimizer.step().",
)
def test_todo3_losses_fall(submission):
    for name, label in (("sgd_losses", "SGD"), ("adam_losses", "Adam")):
        values = _epoch_losses(submission, name)
        assert len(values) >= 2, f"{label} trained for only one epoch: keep EPOCHS = 10."
        first, last = values[0], values[-1]
        assert last == last and last < 0.9 * first, (
            f"{label}'s loss went from {first:.3f} to {last:.3f}: it should fall. If it stays "
            "flat, optimizer.step() never runs or the learning rate is 0; if it grows, the "
            "learning rate is too large."
        )


@check(
    "Adam brings the loss below 0.3",
    hint="With minibatches of about 32 and Adam at lr=0.001 to 0.01, ten epochs bring the "
    "loss well below 0.3. A very large batch takes too few steps per epoch.",
)
def test_todo3_adam_loss(submission):
    last = _epoch_losses(submission, "adam_losses")[-1]
    assert last < ADAM_LOSS_TARGET, (
        f"Adam's loss after the last epoch is {last:.3f}; it should be below "
        f"{ADAM_LOSS_TARGET}. Check the batch size (about 32) and the learning rate."
    )


@check(
    "Adam's network reads the test digits",
    hint="Train both models to the end (TODO 1 to 3); Adam's network should reach 90% on the "
    "test set.",
)
def test_todo3_adam_accuracy(submission):
    accuracy = _test_accuracy(submission, _model(submission, "adam_model"))
    assert accuracy >= ACCURACY_TARGET, (
        f"adam_model gets {accuracy:.0%} of the test digits right; it should get at least "
        f"{ACCURACY_TARGET:.0%}."
    )


@check(
    "You measured both test accuracies",
    hint="In test_accuracy(): with torch.no_grad(), return "
    "(model(X_test).argmax(dim=1) == y_test).float().mean().item().",
)
def test_todo4_accuracies(submission):
    for name, model_name in (("sgd_accuracy", "sgd_model"), ("adam_accuracy", "adam_model")):
        expected = _test_accuracy(submission, _model(submission, model_name))
        value = getattr(submission, name, None)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise AssertionError(
                f"`{name}` should be a number, the share of right answers."
            ) from None
        assert abs(value - expected) < 1e-4, (
            f"{name} is {value:.4f}, but {model_name} gets {expected:.4f} of the test digits "
            "right: compare the highest-scoring digit, argmax(dim=1), with y_test."
        )
