"""A single neuron, trained by gradient descent written by hand (solution)."""

import numpy as np
import torch
from torch import nn

# Seed every random number generator, so each run gives the same results.
torch.manual_seed(0)
np.random.seed(0)

# --- The data: points that follow a rule, plus a little noise ---------------------------------
# The rule the neuron has to discover: y = 2*x1 - 3*x2 + 0.5*x3 + 1.
TRUE_WEIGHTS = torch.tensor([2.0, -3.0, 0.5])
TRUE_BIAS = 1.0
N_FEATURES = len(TRUE_WEIGHTS)

X = torch.randn(200, N_FEATURES)
y = (X @ TRUE_WEIGHTS + TRUE_BIAS + 0.1 * torch.randn(200)).unsqueeze(1)  # shape [200, 1]


# --- The model: one neuron ---------------------------------------------------------------------
def build_model() -> nn.Module:
    """A single neuron: a weighted sum of the 3 inputs plus a bias, one output."""
    return nn.Linear(N_FEATURES, 1)


model = build_model()
print("starting weights:", model.weight.data, "bias:", model.bias.data)
loss_fn = nn.MSELoss()

# --- Gradient descent, by hand ----------------------------------------------------------------
LEARNING_RATE = 0.1
EPOCHS = 60
losses = []  # the loss at each epoch

for epoch in range(EPOCHS):
    # TODO 1: The forward pass: the neuron's predictions and the loss.
    predictions = model(X)
    loss = loss_fn(predictions, y)

    # TODO 2: Backpropagation: the gradient of the loss for every parameter.
    loss.backward()

    # TODO 3: One step downhill for every parameter, then clear the gradients.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter -= LEARNING_RATE * parameter.grad
            parameter.grad.zero_()

    losses.append(loss.item())
    if epoch % 10 == 0 or epoch == EPOCHS - 1:
        print(f"epoch {epoch:3d}  loss {loss.item():.4f}")

# --- What did the neuron learn? ----------------------------------------------------------------
# TODO 4: Read the learned weights and bias, and predict a new point by hand.
learned_weights = model.weight.detach().reshape(-1)
learned_bias = model.bias.item()
print("learned weights:", learned_weights, " true:", TRUE_WEIGHTS)
print(f"learned bias: {learned_bias:.3f}  true: {TRUE_BIAS}")

x_new = torch.tensor([1.0, 2.0, -1.0])
by_hand = (x_new * learned_weights).sum() + learned_bias
with torch.no_grad():
    by_model = model(x_new.unsqueeze(0)).item()
print(f"prediction for {x_new.tolist()}: by hand {float(by_hand):.4f}, by the model {by_model:.4f}")
