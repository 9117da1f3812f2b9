"""Deep networks and activations: why stacking linear layers is not enough.

Complete the TODOs in order. The script runs as it is, so press Run after each TODO
to see what changed, and Check to see which checks pass.
"""

import numpy as np
import torch
import torch.nn.functional as F
from dojo import report
from sklearn.datasets import make_circles
from sklearn.model_selection import train_test_split
from torch import nn

# Seed every random number generator, so each run gives the same results.
torch.manual_seed(0)
np.random.seed(0)

# --- The data: two rings of points, one inside the other -------------------------------------
# Class 0 is the outer ring, class 1 the inner one. No straight line can separate them.
X, y = make_circles(n_samples=600, noise=0.1, factor=0.5, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, random_state=0, stratify=y
)
X_train = torch.tensor(X_train, dtype=torch.float32)
X_test = torch.tensor(X_test, dtype=torch.float32)
y_train = torch.tensor(y_train, dtype=torch.float32).unsqueeze(1)  # shape [450, 1]: 0.0 or 1.0
y_test = torch.tensor(y_test, dtype=torch.float32).unsqueeze(1)

HIDDEN = 16  # neurons per hidden layer
EPOCHS = 200


def train(model: nn.Module, name: str) -> None:
    """Train `model` on the training set; its loss is drawn on the chart as the curve `name`."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(EPOCHS):
        logits = model(X_train)  # one raw score per point: above 0 means "inner ring"
        loss = F.binary_cross_entropy_with_logits(logits, y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        report(step=epoch, **{name: loss.item()})  # one curve per model on the chart


# --- A deep network made of linear layers only -------------------------------------------------
def build_linear_model() -> nn.Module:
    """Three layers, two of them hidden, and nothing between them."""
    return nn.Sequential(nn.Linear(2, HIDDEN), nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, 1))


# --- The same network with activation functions ------------------------------------------------
ACTIVATION = nn.ReLU  # try nn.Tanh and nn.Sigmoid too


def build_model() -> nn.Module:
    """The same three layers, with an activation after each hidden layer."""
    # TODO 1: Build the same three layers as build_linear_model(), with an activation,
    # ACTIVATION(), after each hidden layer: Linear(2, HIDDEN), ACTIVATION(),
    # Linear(HIDDEN, HIDDEN), ACTIVATION(), Linear(HIDDEN, 1). Nothing after the last layer:
    # the loss wants the raw score.
    return build_linear_model()  # placeholder: no activations yet


# TODO 2: Measure the accuracy: the share of points whose predicted class is right.
#   - a raw score above 0 means a probability above 0.5, so the predicted class is
#     predictions = (logits > 0).float()   (1.0 for "inner ring", 0.0 for "outer ring")
#   - the accuracy is the mean of (predictions == targets), as a Python float:
#     (predictions == targets).float().mean().item()
def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """logits: raw scores, shape [N, 1]; targets: 0.0 or 1.0, shape [N, 1]."""
    return 0.0  # placeholder


linear_model = build_linear_model()
train(linear_model, "linear layers only")
model = build_model()
train(model, f"with {ACTIVATION.__name__}")

with torch.no_grad():
    linear_accuracy = accuracy(linear_model(X_test), y_test)
    deep_accuracy = accuracy(model(X_test), y_test)
print(f"Test accuracy, linear layers only: {linear_accuracy:.1%}")
print(f"Test accuracy, with {ACTIVATION.__name__}: {deep_accuracy:.1%}")

# --- Why the linear-only network fails ---------------------------------------------------------
# TODO 3: Show that the three linear layers are one layer in disguise. Each layer computes
# weight @ x + bias, so the whole stack computes W_combined @ x + b_combined with
#   W_combined = W3 @ W2 @ W1                   (shape [1, 2])
#   b_combined = W3 @ (W2 @ b1 + b2) + b3       (shape [1])
# where W1, b1 are first.weight, first.bias, and so on.
first, second, third = linear_model[0], linear_model[1], linear_model[2]
with torch.no_grad():
    W_combined = torch.zeros(1, 2)  # placeholder
    b_combined = torch.zeros(1)  # placeholder
    one_layer = X_test @ W_combined.T + b_combined
    three_layers = linear_model(X_test)
print("W_combined:", W_combined, " b_combined:", b_combined)
print("Same outputs as the three layers?", torch.allclose(one_layer, three_layers, atol=1e-5))
