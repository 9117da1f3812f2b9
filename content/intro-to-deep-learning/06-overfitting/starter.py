"""Overfitting: a validation set, dropout, weight decay and early stopping.

Complete the TODOs in order. The script runs as it is, so press Run after each TODO
to see what changed, and Check to see which checks pass.
"""

import copy

import numpy as np
import torch
from sklearn.datasets import make_moons
from sklearn.model_selection import train_test_split
from torch import nn

# Seed every random number generator, so each run gives the same results.
torch.manual_seed(0)
np.random.seed(0)

# --- The data: two interleaving half-moons, with a lot of noise -------------------------------
X, y = make_moons(n_samples=200, noise=0.3, random_state=0)

# TODO 1: Keep 30% of the points aside as a validation set, which the model never trains on:
#   X_train, X_val, y_train, y_val = train_test_split(
#       X, y, test_size=0.3, random_state=0, stratify=y
#   )
X_train, X_val, y_train, y_val = X, X, y, y  # placeholder: "validating" on the training data

X_train = torch.tensor(X_train, dtype=torch.float32)
X_val = torch.tensor(X_val, dtype=torch.float32)
y_train = torch.tensor(y_train, dtype=torch.float32).unsqueeze(1)
y_val = torch.tensor(y_val, dtype=torch.float32).unsqueeze(1)
print(f"{len(X_train)} training points, {len(X_val)} validation points")

HIDDEN = 128  # far more neurons than 140 points need: room to memorise them
DROPOUT = 0.3  # the share of hidden neurons switched off at each training step
WEIGHT_DECAY = 1e-3  # how hard large weights are pulled back towards 0
MAX_EPOCHS = 500
PATIENCE = 30  # stop after this many epochs without a better validation loss


def build_model() -> nn.Module:
    """Two large hidden layers: 2 coordinates in, 1 score out."""
    # TODO 2: Add nn.Dropout(DROPOUT) right after each nn.ReLU(). During training it switches
    # off a random share of the hidden neurons at every step, so no neuron can rely on another.
    return nn.Sequential(
        nn.Linear(2, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, 1),
    )


model = build_model()
loss_fn = nn.BCEWithLogitsLoss()

# TODO 3: Add weight decay to the optimizer: pass weight_decay=WEIGHT_DECAY to torch.optim.Adam.
# At every step it pulls each weight a little towards 0, which keeps the network smooth.
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

train_losses, val_losses = [], []
best_val_loss = float("inf")
best_epoch = None  # the epoch with the lowest validation loss so far
best_state = None  # a copy of the weights at that epoch
epochs_without_improvement = 0

for epoch in range(MAX_EPOCHS):
    # One training step on the training set (dropout active).
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(X_train), y_train)
    loss.backward()
    optimizer.step()
    train_losses.append(loss.item())

    # TODO 4: Measure the validation loss after each training step:
    #   - model.eval() switches dropout off (model.train() above switches it on again)
    #   - under `with torch.no_grad():`, val_loss = loss_fn(model(X_val), y_val).item()
    # A loss computed under torch.no_grad() appears on the chart as the "val" curve.
    val_loss = loss.item()  # placeholder: the training loss says nothing about overfitting
    val_losses.append(val_loss)

    # TODO 5: Early stopping.
    #   - if val_loss is below best_val_loss: remember it in best_val_loss, the epoch in
    #     best_epoch, a copy of the weights in best_state = copy.deepcopy(model.state_dict()),
    #     and set epochs_without_improvement back to 0
    #   - otherwise add 1 to epochs_without_improvement, and once it reaches PATIENCE,
    #     stop training with `break`

# After training, go back to the weights of the best epoch (TODO 5 keeps them in best_state).
if best_state is not None:
    model.load_state_dict(best_state)
    print(f"Best epoch: {best_epoch}, validation loss {best_val_loss:.3f}")

model.eval()
with torch.no_grad():
    val_accuracy = ((model(X_val) > 0).float() == y_val).float().mean().item()
print(f"Training loss at the end: {train_losses[-1]:.3f}, validation accuracy: {val_accuracy:.1%}")
