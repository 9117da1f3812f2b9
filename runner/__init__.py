"""torchdojo's runner: a warm pool of single-use bubblewrap sandboxes that run PyTorch code."""
