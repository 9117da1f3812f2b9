"""A small convolutional network that reads handwritten digits.

Complete the TODOs in order. The script runs as it is, so press Run after each TODO
to see what changed, and Check to see which checks pass.
"""

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

# TODO 1: Give the images back their shape. A convolution expects
# [images, channels, height, width]: here 1 channel (grey) of 8x8 pixels. Reshape both sets:
#   X_train = X_train.reshape(-1, 1, 8, 8)   (-1: "as many images as there are")
# and the same for X_test.
print("training images:", tuple(X_train.shape))


# --- The model ---------------------------------------------------------------------------------
def build_model() -> nn.Module:
    """A small CNN: 1x8x8 images in, 10 scores out."""
    # TODO 2: Build the CNN of the lesson, layer by layer:
    #   - a convolution block: nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(),
    #     nn.MaxPool2d(2)                      -> 16 feature maps of 4x4
    #   - a second block: nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(),
    #     nn.MaxPool2d(2)                      -> 32 feature maps of 2x2
    #   - nn.Flatten(), then nn.Linear(32 * 2 * 2, 10): one score per digit
    return nn.Sequential(
        nn.Flatten(),  # placeholder: no convolution, just a linear layer on the 64 pixels
        nn.Linear(64, 10),
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
        # TODO 3: The training step: optimizer.zero_grad(), loss.backward(), optimizer.step().
    # After each epoch: the loss and accuracy on the test images.
    model.eval()
    with torch.no_grad():
        scores = model(X_test)
        test_loss = F.cross_entropy(scores, y_test).item()
        accuracy = (scores.argmax(dim=1) == y_test).float().mean().item()
    report(step=step, loss=test_loss, split="val")  # on the chart, beside the training curve
    print(f"epoch {epoch + 1}: test loss {test_loss:.3f}, test accuracy {accuracy:.1%}")

# --- Why convolutions? ---------------------------------------------------------------------------
# TODO 4: Count parameters, to see what sharing one small filter across the image saves:
#   - conv_params: the parameters of the first convolution, model[0]: add up p.numel() for
#     every p in its .parameters()
#   - dense_params: the parameters of the linear layer that would produce as many outputs
#     (16 maps of 8x8 = 1024 numbers) from the 64 pixels: nn.Linear(64, 16 * 8 * 8)
conv_params = 0  # placeholder
dense_params = 0  # placeholder
print(f"first convolution: {conv_params} parameters; a linear layer doing its job: {dense_params}")
