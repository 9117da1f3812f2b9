"""Your first deep learning model: a network that reads handwritten digits.

Complete the TODOs in order. The script runs as it is, so press Run after each TODO
to see what changed, and Check to see which checks pass.
"""

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

# TODO 1: Standardise the features: every pixel should have mean 0 and standard deviation 1
# on the training set. Networks learn much faster from inputs of that size.
# Fit a StandardScaler on the training set only (StandardScaler().fit(X_train)), then use
# its .transform() on both X_train and X_test.


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
        # TODO 2: Create the layers and keep each one on self (self.name = nn.Linear(...)):
        # an input layer that takes N_FEATURES inputs, at least two hidden layers (e.g. 64 and
        # 32 neurons), then an output layer that gives N_CLASSES scores. Each layer is
        # nn.Linear(inputs, outputs); one layer's outputs are the next one's inputs.
        # Keep an activation function too, for the forward pass: self.relu = nn.ReLU().
        self.output = nn.Linear(N_FEATURES, N_CLASSES)  # placeholder: the only layer so far

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO 3: Write the forward pass: what the network does to a batch of images x.
        # Pass x through every layer you created, in order, and put the activation function,
        # self.relu(...), after each layer but the output layer (the loss function wants the
        # raw scores). For example: x = self.relu(self.hidden1(x)). Return the output layer's
        # scores: one row of N_CLASSES scores for each image.
        return self.output(x)  # placeholder: straight from the pixels to the scores


def build_model() -> nn.Module:
    """A fresh, untrained network."""
    return DigitClassifier()


model = build_model()

# TODO 4: "Compile" the model. Keras has model.compile(); in PyTorch you do the same job by
# choosing two things yourself:
#   - a loss function, which measures how wrong the predictions are. For classification
#     into several classes use nn.CrossEntropyLoss().
#   - an optimizer, which updates the weights to make the loss smaller, e.g.
#     torch.optim.Adam(model.parameters(), lr=0.01).
loss_fn = None
optimizer = None

# --- Training -----------------------------------------------------------------------------------
EPOCHS = 30
losses = []  # the training loss after each epoch

for epoch in range(EPOCHS):
    if loss_fn is None or optimizer is None:
        print("TODO 4: choose a loss function and an optimizer, then the model can train.")
        break
    # TODO 5: Train for one epoch on the whole training set:
    #   1. the forward pass: logits = model(X_train)
    #   2. the loss: loss = loss_fn(logits, y_train)
    #   3. clear the old gradients with optimizer.zero_grad(), backpropagate with
    #      loss.backward(), and update the weights with optimizer.step()
    #   4. keep the loss: losses.append(loss.item())
    pass

if losses:
    print(f"Loss after the first epoch: {losses[0]:.3f}, after the last: {losses[-1]:.3f}")

# --- The architecture --------------------------------------------------------------------------
# TODO 6: Print the model to see its layers: print(model). Then count its trainable
# parameters (the numbers training adjusts): add up p.numel() for every p in model.parameters().
total_params = 0
print(f"Trainable parameters: {total_params}")
