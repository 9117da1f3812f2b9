"""Checks for "Stop the Network From Memorising".

PYTEST_DONT_REWRITE: a failed check shows the learner our message, not pytest's
expression dump.

`submission` is the learner's script after it ran: its global variables are attributes.
A check named test_todoN_... is tied to TODO N: the untouched starter must fail it.
Every check fails with an assert and a message, never an AttributeError.
"""

import torch
import torch.nn.functional as F
from dojo import check, history
from sklearn.datasets import make_moons
from torch import nn

N_POINTS = 200
VAL_ACCURACY_TARGET = 0.85
NEW_DATA_LOSS_TARGET = 0.4


def _model(submission):
    model = getattr(submission, "model", None)
    assert isinstance(model, nn.Module), (
        "There is no `model` that is an nn.Module: keep the line `model = build_model()`."
    )
    return model


def _scores(model, X):
    model.eval()
    try:
        with torch.no_grad():
            return model(X).reshape(-1)
    except Exception as exc:  # the learner's forward pass: report, don't crash the check
        raise AssertionError(f"The model could not run: {type(exc).__name__}: {exc}") from None


def _split(submission):
    names = ("X_train", "X_val", "y_train", "y_val")
    values = [getattr(submission, name, None) for name in names]
    assert all(v is not None for v in values), (
        "X_train, X_val, y_train or y_val is missing: keep the names the starter uses."
    )
    X_train, X_val, y_train, y_val = (torch.as_tensor(v).float() for v in values)
    return X_train, X_val, y_train.reshape(-1), y_val.reshape(-1)


def _losses(submission, name):
    values = getattr(submission, name, None)
    assert isinstance(values, list | tuple) and values, (
        f"`{name}` is empty: keep the line that appends each epoch's loss to it."
    )
    return [float(v) for v in values]


def _best_epoch(submission):
    val_losses = _losses(submission, "val_losses")
    best = getattr(submission, "best_epoch", None)
    assert isinstance(best, int) and 0 <= best < len(val_losses), (
        f"best_epoch is {best!r}: it should be the number of the epoch with the lowest "
        "validation loss. Set best_epoch = epoch whenever val_loss beats best_val_loss."
    )
    return best, val_losses


@check(
    "A validation set is kept aside",
    hint="X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, "
    "random_state=0, stratify=y)",
)
def test_todo1_split(submission):
    X_train, X_val, _, _ = _split(submission)
    assert len(X_train) + len(X_val) == N_POINTS, (
        f"X_train has {len(X_train)} points and X_val {len(X_val)}: together they should be "
        f"the {N_POINTS} points of X, each in one set only."
    )
    shared = {tuple(row) for row in X_train.tolist()} & {tuple(row) for row in X_val.tolist()}
    assert not shared, (
        f"{len(shared)} points are in both X_train and X_val. A validation set is only "
        "useful if the model never trains on it: split X with train_test_split."
    )
    share = len(X_val) / N_POINTS
    assert 0.15 <= share <= 0.4, (
        f"The validation set holds {share:.0%} of the points: keep about 30% (test_size=0.3)."
    )


@check(
    "The network uses dropout",
    hint="Put nn.Dropout(DROPOUT) after each nn.ReLU() in build_model().",
)
def test_todo2_dropout(submission):
    dropouts = [m for m in _model(submission).modules() if isinstance(m, nn.Dropout)]
    assert dropouts, (
        "The model has no nn.Dropout layer: add nn.Dropout(DROPOUT) after each activation."
    )
    rates = [m.p for m in dropouts]
    assert all(0 < p < 1 for p in rates), (
        f"The dropout rates are {rates}: each should be above 0 (0 switches nothing off) and "
        "below 1 (1 switches everything off). 0.2 to 0.5 is usual."
    )


@check(
    "The optimizer applies weight decay",
    hint="optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=WEIGHT_DECAY)",
)
def test_todo3_weight_decay(submission):
    optimizer = getattr(submission, "optimizer", None)
    assert isinstance(optimizer, torch.optim.Optimizer), (
        "`optimizer` should be a torch.optim optimizer: keep the line that creates it."
    )
    decays = [group.get("weight_decay", 0) for group in optimizer.param_groups]
    assert any(d > 0 for d in decays), (
        "The optimizer's weight_decay is 0: pass weight_decay=WEIGHT_DECAY (e.g. 1e-3)."
    )
    assert all(d < 0.1 for d in decays), (
        f"A weight decay of {max(decays)} pulls the weights to 0 faster than the network can "
        "learn: keep it small, 1e-4 to 1e-2."
    )


@check(
    "The validation loss is measured every epoch",
    hint="After each training step: model.eval(), then under torch.no_grad(), "
    "val_loss = loss_fn(model(X_val), y_val).item().",
)
def test_todo4_validation_loss(submission):
    train_losses = _losses(submission, "train_losses")
    val_losses = _losses(submission, "val_losses")
    assert len(val_losses) == len(train_losses), (
        f"There are {len(train_losses)} training losses but {len(val_losses)} validation "
        "losses: measure the validation loss once per epoch."
    )
    assert val_losses != train_losses, (
        "val_losses is the same as train_losses: compute val_loss on X_val and y_val."
    )
    assert len(history("loss", split="val")) >= 2, (
        "No validation curve reached the chart: compute the validation loss with loss_fn "
        "inside `with torch.no_grad():`."
    )


@check(
    "Training stopped early, at the best epoch",
    hint="Track best_val_loss, best_epoch and best_state; count epochs_without_improvement "
    "and break once it reaches PATIENCE.",
)
def test_todo5_early_stopping(submission):
    best, val_losses = _best_epoch(submission)
    lowest = min(val_losses)
    assert val_losses[best] <= lowest + 1e-3, (
        f"best_epoch is {best}, with a validation loss of {val_losses[best]:.4f}, but epoch "
        f"{val_losses.index(lowest)} had {lowest:.4f}: update best_epoch whenever val_loss "
        "beats best_val_loss."
    )
    patience = getattr(submission, "PATIENCE", 30)
    after = len(val_losses) - 1 - best
    assert after <= patience, (
        f"Training went on for {after} epochs after the best one, more than the patience of "
        f"{patience}: count epochs_without_improvement and `break` once it reaches PATIENCE."
    )


@check(
    "The model keeps the weights of its best epoch",
    hint="Keep best_state = copy.deepcopy(model.state_dict()) at each new best; the code "
    "after the loop restores it with model.load_state_dict(best_state).",
)
def test_todo5_best_weights(submission):
    best, val_losses = _best_epoch(submission)
    _, X_val, _, y_val = _split(submission)
    loss = F.binary_cross_entropy_with_logits(_scores(_model(submission), X_val), y_val).item()
    assert abs(loss - val_losses[best]) < 1e-3, (
        f"The model's validation loss is {loss:.4f} now, but it was {val_losses[best]:.4f} at "
        "its best epoch. Keep a deepcopy of model.state_dict() at each new best, and measure "
        "the validation loss after model.eval(), so dropout is off."
    )


@check(
    "The model does well on points it has never seen",
    hint="With a real validation set, dropout, weight decay and early stopping (TODO 1 to 5), "
    "the model should get 85% of the validation points right.",
)
def test_todo5_generalises(submission):
    model = _model(submission)
    _, X_val, _, y_val = _split(submission)
    accuracy = ((_scores(model, X_val) > 0).float() == y_val).float().mean().item()
    assert accuracy >= VAL_ACCURACY_TARGET, (
        f"The model gets {accuracy:.0%} of the validation points right; it should get at "
        f"least {VAL_ACCURACY_TARGET:.0%}."
    )
    # 1000 fresh points from the same two moons: data no choice of the learner has seen.
    X_new, y_new = make_moons(n_samples=1000, noise=0.3, random_state=1)
    X_new = torch.tensor(X_new, dtype=torch.float32)
    y_new = torch.tensor(y_new, dtype=torch.float32)
    loss = F.binary_cross_entropy_with_logits(_scores(model, X_new), y_new).item()
    assert loss < NEW_DATA_LOSS_TARGET, (
        f"On 1000 new points the model's loss is {loss:.2f}, above {NEW_DATA_LOSS_TARGET}: it "
        "is overconfident about points it memorised. Regularise it and stop at the best epoch."
    )
