"""Your first deep learning model: a network that reads handwritten digits (solution)."""

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

# Seed every random number generator, so each run gives the same results.
torch.manual_seed(0)
np.random.seed(0)

# --- The data: 1797 images of handwritten digits, 8x8 pixels each ----------------------------
digits = load_digits()
N_FEATURES = digits.data.shape[1]  # 64: one number per pixel
N_CLASSES = len(digits.target_names)  # 10: the digits 0 to 9

# Keep 20% of the images aside to test the model on digits it never saw in training.
X_train, X_test, y_train, y_test = train_test_split(
    digits.data, digits.target, test_size=0.2, random_state=0, stratify=digits.target
)

# TODO 1: Standardise the features, with the training set's mean and standard deviation.
scaler = StandardScaler().fit(X_train)
X_train = scaler.transform(X_train)
X_test = scaler.transform(X_test)

# PyTorch works on tensors: 32-bit floats for the inputs, integers for the class labels.
X_train = torch.tensor(X_train, dtype=torch.float32)
X_test = torch.tensor(X_test, dtype=torch.float32)
y_train = torch.tensor(y_train, dtype=torch.long)
y_test = torch.tensor(y_test, dtype=torch.long)


# --- The model ---------------------------------------------------------------------------------
class DigitClassifier(nn.Module):
    """The network: 64 pixel values in, 10 scores out (one per digit)."""

    def __init__(self) -> None:
        super().__init__()
        # TODO 2: the input layer, two hidden layers and the output layer.
        self.hidden1 = nn.Linear(N_FEATURES, 64)  # input layer -> first hidden layer
        self.hidden2 = nn.Linear(64, 32)  # second hidden layer
        self.output = nn.Linear(32, N_CLASSES)  # output layer: one raw score (logit) per digit
        self.relu = nn.ReLU()  # the activation function, used after each hidden layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO 3: every layer in order, with ReLU between them (none after the output layer).
        x = self.relu(self.hidden1(x))
        x = self.relu(self.hidden2(x))
        return self.output(x)


def build_model() -> nn.Module:
    """A fresh, untrained network."""
    return DigitClassifier()


model = build_model()

# TODO 4: "Compile" the model: a loss function for classification and an optimizer.
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

# --- Training -----------------------------------------------------------------------------------
EPOCHS = 30
losses = []  # the training loss after each epoch

for epoch in range(EPOCHS):
    if loss_fn is None or optimizer is None:
        print("TODO 4: choose a loss function and an optimizer, then the model can train.")
        break
    # TODO 5: one epoch on the whole training set.
    logits = model(X_train)
    loss = loss_fn(logits, y_train)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

if losses:
    print(f"Loss after the first epoch: {losses[0]:.3f}, after the last: {losses[-1]:.3f}")

# --- The architecture --------------------------------------------------------------------------
# TODO 6: print the model, and count its trainable parameters.
print(model)
total_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(f"Trainable parameters: {total_params}")
