"""Optimizers: SGD and Adam on minibatches, compared on the live loss curve.

Complete the TODOs in order. The script runs as it is, so press Run after each TODO
to see what changed, and Check to see which checks pass.
"""

import numpy as np
import torch
import torch.nn.functional as F
from dojo import report
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

# Seed every random number generator, so each run gives the same results.
torch.manual_seed(0)
np.random.seed(0)

# --- The data: the handwritten digits of lesson 1, standardised -------------------------------
digits = load_digits()
X_train, X_test, y_train, y_test = train_test_split(
    digits.data, digits.target, test_size=0.2, random_state=0, stratify=digits.target
)
scaler = StandardScaler().fit(X_train)
X_train = torch.tensor(scaler.transform(X_train), dtype=torch.float32)
X_test = torch.tensor(scaler.transform(X_test), dtype=torch.float32)
y_train = torch.tensor(y_train, dtype=torch.long)
y_test = torch.tensor(y_test, dtype=torch.long)

BATCH_SIZE = 32
EPOCHS = 10

# TODO 1: Serve the training set in shuffled minibatches of BATCH_SIZE examples:
#   - TensorDataset(X_train, y_train) pairs each image with its label
#   - DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True) deals them out in random
#     minibatches, in a new order every epoch
train_loader = [(X_train, y_train)]  # placeholder: one single batch of all 1437 images


# --- The model ---------------------------------------------------------------------------------
def build_model() -> nn.Module:
    """64 pixels in, one hidden layer of 32 neurons, 10 scores out."""
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


# Two copies of the same network, with the same starting weights, so the race is fair.
torch.manual_seed(0)
sgd_model = build_model()
torch.manual_seed(0)
adam_model = build_model()

# TODO 2: One optimizer for each model, each given the parameters of its own model:
#   - sgd_optimizer: torch.optim.SGD(sgd_model.parameters(), lr=0.01)
#   - adam_optimizer: torch.optim.Adam(adam_model.parameters(), lr=0.001)
sgd_optimizer = torch.optim.SGD(sgd_model.parameters(), lr=0.0)  # placeholder: never moves
adam_optimizer = torch.optim.SGD(adam_model.parameters(), lr=0.0)  # placeholder: not Adam yet


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, name: str) -> list[float]:
    """Train `model` for EPOCHS epochs of minibatches; return the average loss of each epoch."""
    epoch_losses = []
    for epoch in range(EPOCHS):
        total = 0.0
        for xb, yb in train_loader:
            loss = F.cross_entropy(model(xb), yb)
            # TODO 3: The training step for this minibatch: clear the old gradients with
            # optimizer.zero_grad(), backpropagate with loss.backward(), and let the
            # optimizer update the weights with optimizer.step().
            total += loss.item() * len(xb)
        epoch_loss = total / len(X_train)
        epoch_losses.append(epoch_loss)
        report(step=epoch + 1, **{name: epoch_loss})  # one curve per optimizer on the chart
    return epoch_losses


sgd_losses = fit(sgd_model, sgd_optimizer, "SGD")
adam_losses = fit(adam_model, adam_optimizer, "Adam")
print(f"Loss after {EPOCHS} epochs: SGD {sgd_losses[-1]:.3f}, Adam {adam_losses[-1]:.3f}")


# TODO 4: Each model's accuracy on the test set: under torch.no_grad(), the predicted digit is
# the one with the highest score, model(X_test).argmax(dim=1); the accuracy is the share of
# predictions equal to y_test, (predictions == y_test).float().mean().item().
def test_accuracy(model: nn.Module) -> float:
    return 0.0  # placeholder


sgd_accuracy = test_accuracy(sgd_model)
adam_accuracy = test_accuracy(adam_model)
print(f"Test accuracy: SGD {sgd_accuracy:.1%}, Adam {adam_accuracy:.1%}")
