"""Tensors and autograd: a gradient by hand, then the same gradient from backward() (solution)."""

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

# TODO 1: Turn the numpy arrays into tensors of 32-bit floats.
X = torch.tensor(X_np, dtype=torch.float32)
y = torch.tensor(y_np, dtype=torch.float32)
print("tensors:     ", tuple(X.shape), X.dtype, "and", tuple(y.shape), y.dtype)

# TODO 2: The parameters of a linear model, with gradient tracking switched on.
w = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
b = torch.tensor(0.0, requires_grad=True)

# TODO 3: The forward pass: one prediction per example, then the mean squared error.
y_hat = X @ w + b
loss = ((y_hat - y) ** 2).mean()
print(f"predictions: shape {tuple(y_hat.shape)}, loss: {loss.item():.4f}")

# TODO 4: The gradients by hand, with the formulas from the lesson.
with torch.no_grad():
    error = y_hat - y
    grad_w_by_hand = 2 / N * (X.T @ error)
    grad_b_by_hand = 2 / N * error.sum()
print("by hand:     dL/dw =", grad_w_by_hand, " dL/db =", grad_b_by_hand)

# TODO 5: Let autograd compute the same gradients.
loss.backward()

# --- Do they agree? ------------------------------------------------------------------------------
print("by autograd: dL/dw =", w.grad, " dL/db =", b.grad)
if w.grad is not None and b.grad is not None:
    agree = torch.allclose(w.grad, grad_w_by_hand, atol=1e-4) and torch.allclose(
        b.grad, grad_b_by_hand, atol=1e-4
    )
    print("Do your gradients and autograd's agree?", agree)
else:
    print("w.grad is None: autograd has not computed any gradient yet (TODO 5).")
