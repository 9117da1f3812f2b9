from dojo import check
from torch import nn


@check("The model ends with 3 outputs", hint="Make the last nn.Linear produce 3 features.")
def test_outputs(submission):
    assert submission.model[-1].out_features == 3


@check("A loss for classification", hint="Use nn.CrossEntropyLoss() for class labels.")
def test_loss(submission):
    assert isinstance(submission.loss_fn, nn.CrossEntropyLoss), (
        f"loss_fn is {type(submission.loss_fn).__name__}, not CrossEntropyLoss"
    )


@check("An optimizer exists", hint="Create optimizer = torch.optim.Adam(model.parameters()).")
def test_optimizer(submission):
    submission.optimizer.step()
