"""What the zygote does once, so no job pays for it: import everything a lesson is likely to
import, then run neutral code of its own through the first calls that are slow only the first
time (lazy submodule imports, autograd's engine, optimizers, DataLoader, torchinfo, a figure's
first PNG, pytest's first session).

None of this is learner code, and nothing here depends on a job. `PRELOAD` is checked against
every import in content/ by the test suite, so a new lesson's imports are warm too.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import io
import os
import shutil
import sys
from collections.abc import Iterator

PRELOAD = (
    # the standard library lessons use
    "ast",
    "collections",
    "copy",
    "dataclasses",
    "functools",
    "itertools",
    "json",
    "math",
    "random",
    "time",
    "typing",
    # the numerical stack
    "numpy",
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.optim",
    "torch.optim.lr_scheduler",
    "torch.utils.data",
    "torchinfo",
    "sklearn.datasets",
    "sklearn.model_selection",
    "sklearn.preprocessing",
    "sklearn.metrics",
    "matplotlib",
    "matplotlib.pyplot",
    "pytest",
)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """What imports print (font cache notes, warnings) is not a learner's output: it goes to
    /dev/null. An import that fails still raises, and the runner reports a broken zygote."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def warm_up() -> None:
    with quiet():
        import matplotlib

        matplotlib.use("Agg")
        for name in PRELOAD:
            importlib.import_module(name)
        _exercise_torch()
        _exercise_libraries()
        _exercise_pytest()
    close_files()


def close_files() -> None:
    """Close what the warm-up left open (matplotlib keeps its fonts open). A forked job closes
    every descriptor it did not make; a library object still holding one would then read
    whatever file next gets that number."""
    import matplotlib.font_manager

    matplotlib.font_manager._get_font.cache_clear()  # type: ignore[attr-defined]
    give_back_memory()


def open_files() -> list[str]:
    """What this process has open beyond stdin, stdout and stderr (for the zygote's check)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{name}")
            if int(name) > 2 and not target.startswith(("socket:", "pipe:", "/proc/")):
                found.append(f"{name}: {target}")
    return found


def touch() -> None:
    """Run the neutral training step again in a freshly forked sandbox, before its job arrives:
    the pages it touches are copied (and the libraries' code mapped) now, while the sandbox
    waits, not during the job. Then hand back what it allocated (glibc keeps freed memory for
    itself otherwise), so a warm sandbox holds only those copied pages. Writes no file."""
    with quiet():
        _exercise_torch()
    give_back_memory()


def give_back_memory() -> None:
    """Collect garbage, then hand the heap's free pages back to the kernel (glibc keeps freed
    memory for itself otherwise): what the warm-up allocated and let go is not kept."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _exercise_torch() -> None:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.BatchNorm2d(2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.Linear(8, 4),
        nn.Tanh(),
        nn.Linear(4, 3),
        nn.Sigmoid(),
    )
    images, labels = torch.randn(8, 1, 4, 4), torch.randint(0, 3, (8,))
    loader = DataLoader(TensorDataset(images, labels), batch_size=4, shuffle=True)
    losses = (nn.CrossEntropyLoss(), nn.MSELoss(), nn.BCEWithLogitsLoss())
    optimizers = (
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        torch.optim.Adam(model.parameters(), lr=0.01),
        torch.optim.AdamW(model.parameters(), weight_decay=0.01),
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizers[0], step_size=1)
    for optimizer in optimizers:
        model.train()
        for batch, target in loader:
            output = model(batch)
            loss = losses[0](output, target) + losses[1](output, output.detach() * 0)
            loss = loss + losses[2](output, torch.zeros_like(output))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        model(images).argmax(dim=1).eq(labels).float().mean().item()
    model.load_state_dict(model.state_dict())
    import copy

    import torchinfo

    copy.deepcopy(model)
    torchinfo.summary(model, input_size=(1, 1, 4, 4), verbose=0)


def _exercise_libraries() -> None:
    import matplotlib.pyplot as plt
    import numpy
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    digits = load_digits()
    train, _ = train_test_split(digits.data[:20], test_size=0.25, random_state=0)
    StandardScaler().fit_transform(train)
    numpy.random.default_rng(0).normal(size=3)
    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0], label="warm")
    axes.legend()
    axes.set_title("warm")
    figure.savefig(io.BytesIO(), format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)


def _exercise_pytest() -> None:
    import pytest

    folder = "/tmp/.warm"
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "test_warm.py"), "w") as handle:
        handle.write("def test_warm():\n    assert True\n")
    pytest.main([folder, "--noconftest", "-p", "no:cacheprovider", "-c", os.devnull, "-s", "-q"])
    shutil.rmtree(folder, ignore_errors=True)
    sys.modules.pop("test_warm", None)
