"""A small convolutional network that reads handwritten digits (solution)."""

import numpy as np
import torch
import torch.nn.functional as F
from dojo import report
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

# Seed every random number generator, so each run gives the same results.
torch.manual_seed(0)
np.random.seed(0)

# --- The data: 1797 images of 8x8 pixels, each pixel from 0 (white) to 16 (black) -------------
digits = load_digits()
X_train, X_test, y_train, y_test = train_test_split(
    digits.data / 16.0, digits.target, test_size=0.2, random_state=0, stratify=digits.target
)
X_train = torch.tensor(X_train, dtype=torch.float32)  # shape [1437, 64]: each image in a row
X_test = torch.tensor(X_test, dtype=torch.float32)
y_train = torch.tensor(y_train, dtype=torch.long)
y_test = torch.tensor(y_test, dtype=torch.long)

# TODO 1: Give the images back their shape: [images, channels, height, width].
X_train = X_train.reshape(-1, 1, 8, 8)
X_test = X_test.reshape(-1, 1, 8, 8)
print("training images:", tuple(X_train.shape))


# --- The model ---------------------------------------------------------------------------------
def build_model() -> nn.Module:
    """A small CNN: 1x8x8 images in, 10 scores out."""
    # TODO 2: Two convolution blocks, then a linear layer on the flattened features.
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1),  # 16 feature maps of 8x8
        nn.ReLU(),
        nn.MaxPool2d(2),  # 16 x 4 x 4
        nn.Conv2d(16, 32, kernel_size=3, padding=1),  # 32 feature maps of 4x4
        nn.ReLU(),
        nn.MaxPool2d(2),  # 32 x 2 x 2
        nn.Flatten(),  # 128 numbers per image
        nn.Linear(32 * 2 * 2, 10),
    )


model = build_model()
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
train_loader = DataLoader(TensorDataset(X_train, y_train), batch_size=64, shuffle=True)

# --- Training ----------------------------------------------------------------------------------
EPOCHS = 8
step = 0  # minibatches so far: the x axis of the loss chart
for epoch in range(EPOCHS):
    model.train()
    for xb, yb in train_loader:
        step += 1
        loss = loss_fn(model(xb), yb)  # drawn on the chart as the training curve
        # TODO 3: The training step.
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # After each epoch: the loss and accuracy on the test images.
    model.eval()
    with torch.no_grad():
        scores = model(X_test)
        test_loss = F.cross_entropy(scores, y_test).item()
        accuracy = (scores.argmax(dim=1) == y_test).float().mean().item()
    report(step=step, loss=test_loss, split="val")  # on the chart, beside the training curve
    print(f"epoch {epoch + 1}: test loss {test_loss:.3f}, test accuracy {accuracy:.1%}")

# --- Why convolutions? ---------------------------------------------------------------------------
# TODO 4: Count the parameters of the first convolution, and of a linear layer that would
# produce the same number of outputs (16 maps of 8x8) from the 64 pixels.
first_conv = model[0]
conv_params = sum(p.numel() for p in first_conv.parameters())
dense_params = sum(p.numel() for p in nn.Linear(64, 16 * 8 * 8).parameters())
print(f"first convolution: {conv_params} parameters; a linear layer doing its job: {dense_params}")
