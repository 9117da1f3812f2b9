"""Optimizers: SGD and Adam on minibatches, compared on the live loss curve (solution)."""

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

# TODO 1: A DataLoader that serves the training set in shuffled minibatches.
train_loader = DataLoader(TensorDataset(X_train, y_train), batch_size=BATCH_SIZE, shuffle=True)


# --- The model ---------------------------------------------------------------------------------
def build_model() -> nn.Module:
    """64 pixels in, one hidden layer of 32 neurons, 10 scores out."""
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


# Two copies of the same network, with the same starting weights, so the race is fair.
torch.manual_seed(0)
sgd_model = build_model()
torch.manual_seed(0)
adam_model = build_model()

# TODO 2: One optimizer for each model.
sgd_optimizer = torch.optim.SGD(sgd_model.parameters(), lr=0.01)
adam_optimizer = torch.optim.Adam(adam_model.parameters(), lr=0.001)


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, name: str) -> list[float]:
    """Train `model` for EPOCHS epochs of minibatches; return the average loss of each epoch."""
    epoch_losses = []
    for epoch in range(EPOCHS):
        total = 0.0
        for xb, yb in train_loader:
            loss = F.cross_entropy(model(xb), yb)
            # TODO 3: The training step for this minibatch.
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)
        epoch_loss = total / len(X_train)
        epoch_losses.append(epoch_loss)
        report(step=epoch + 1, **{name: epoch_loss})  # one curve per optimizer on the chart
    return epoch_losses


sgd_losses = fit(sgd_model, sgd_optimizer, "SGD")
adam_losses = fit(adam_model, adam_optimizer, "Adam")
print(f"Loss after {EPOCHS} epochs: SGD {sgd_losses[-1]:.3f}, Adam {adam_losses[-1]:.3f}")


# TODO 4: Each model's accuracy on the test set.
def test_accuracy(model: nn.Module) -> float:
    with torch.no_grad():
        return (model(X_test).argmax(dim=1) == y_test).float().mean().item()


sgd_accuracy = test_accuracy(sgd_model)
adam_accuracy = test_accuracy(adam_model)
print(f"Test accuracy: SGD {sgd_accuracy:.1%}, Adam {adam_accuracy:.1%}")
