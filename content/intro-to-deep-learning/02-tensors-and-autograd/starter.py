"""Tensors and autograd: a gradient by hand, then the same gradient from backward().

Complete the TODOs in order. The script runs as it is, so press Run after each TODO
to see what changed, and Check to see which checks pass.
"""

import numpy as np
import torch

# Seed every random number generator, so each run gives the same results.
torch.manual_seed(0)
rng = np.random.default_rng(0)

# --- The data: 8 examples with 3 features each, and one target number per example -----------
# The targets follow a rule the model does not know yet: y = 2*x1 - 3*x2 + 0.5*x3 + 1 (+ noise).
X_np = rng.normal(size=(8, 3))
y_np = X_np @ np.array([2.0, -3.0, 0.5]) + 1.0 + 0.1 * rng.normal(size=8)
N = len(X_np)  # 8 examples
print("numpy arrays:", X_np.shape, X_np.dtype, "and", y_np.shape, y_np.dtype)

# TODO 1: Turn the numpy arrays into tensors of 32-bit floats:
#   X = torch.tensor(X_np, dtype=torch.float32), and the same for y from y_np.
# numpy gives 64-bit floats (float64); PyTorch models work in float32.
X = torch.zeros(N, 3)  # placeholder: replace with the data
y = torch.zeros(N)  # placeholder: replace with the targets
print("tensors:     ", tuple(X.shape), X.dtype, "and", tuple(y.shape), y.dtype)

# TODO 2: The parameters of a linear model: a weight per feature and one bias. Switch on
# gradient tracking, so autograd records every operation that uses them:
#   torch.tensor([0.5, -1.0, 2.0], requires_grad=True), and torch.tensor(0.0, requires_grad=True)
w = torch.tensor([0.5, -1.0, 2.0])
b = torch.tensor(0.0)

# TODO 3: The forward pass:
#   - one prediction per example: y_hat = X @ w + b  (shape [8]: check it!)
#   - the mean squared error: loss = ((y_hat - y) ** 2).mean()
y_hat = torch.zeros(N)  # placeholder
loss = torch.tensor(0.0)  # placeholder
print(f"predictions: shape {tuple(y_hat.shape)}, loss: {loss.item():.4f}")

# TODO 4: The gradients by hand, with the formulas from the lesson:
#   dL/dw = 2/N * X^T (y_hat - y)     dL/db = 2/N * sum(y_hat - y)
# Work them out under `with torch.no_grad():`, so autograd does not record this arithmetic.
# In PyTorch, X^T is X.T and a matrix-vector product is @.
grad_w_by_hand = torch.zeros(3)  # placeholder
grad_b_by_hand = torch.tensor(0.0)  # placeholder
print("by hand:     dL/dw =", grad_w_by_hand, " dL/db =", grad_b_by_hand)

# TODO 5: Let autograd compute the same gradients: call loss.backward() once. It fills in
# w.grad and b.grad, which the code below prints and compares with yours.


# --- Do they agree? ------------------------------------------------------------------------------
print("by autograd: dL/dw =", w.grad, " dL/db =", b.grad)
if w.grad is not None and b.grad is not None:
    agree = torch.allclose(w.grad, grad_w_by_hand, atol=1e-4) and torch.allclose(
        b.grad, grad_b_by_hand, atol=1e-4
    )
    print("Do your gradients and autograd's agree?", agree)
else:
    print("w.grad is None: autograd has not computed any gradient yet (TODO 5).")
