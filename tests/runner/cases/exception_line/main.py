import torch


def shapes_must_match(a, b):
    return a @ b


result = shapes_must_match(torch.ones(2, 3), torch.ones(4, 5))
print("never printed", result)
