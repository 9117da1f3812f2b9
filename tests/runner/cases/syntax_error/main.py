import torch

x = torch.ones(3)
print(x.sum()
y = 2
