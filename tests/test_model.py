import pytest
import torch

from recipes.core.model import CIFAR100_MEAN, resnet_cifar


@pytest.mark.parametrize(
    ('name', 'classes', 'params'),
    [('resnet_20', 10, 272_474), ('resnet_56', 10, 855_770), ('resnet_56', 100, 861_620)],
)
def test_parameter_counts_match_composer(name, classes, params):
    model = resnet_cifar(name, classes)
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize('name', ['resnet_20', 'resnet_32', 'resnet_44', 'resnet_110'])
def test_output_shape(name):
    model = resnet_cifar(name, 7).eval()
    assert model((torch.rand(3, 3, 32, 32), torch.zeros(3, dtype=torch.long))).shape == (3, 7)


def test_batches_with_and_without_indices_agree():
    torch.manual_seed(0)
    model = resnet_cifar('resnet_20', 10).eval()
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([1, 2, 3, 4])
    plain, indexed = (x, y), (x, y, torch.arange(4))
    out = model(plain)
    assert torch.equal(out, model(indexed))
    assert torch.equal(model.loss(out, plain), model.loss(out, indexed))
    metric = model.get_metrics()['MulticlassAccuracy']
    model.update_metric(indexed, out, metric)
    assert metric.compute() == (out.argmax(1) == y).float().mean()


def test_normalisation_is_inside_the_model():
    model = resnet_cifar('resnet_20', 10)
    grey = torch.tensor(CIFAR100_MEAN).view(1, 3, 1, 1).expand(1, 3, 32, 32)
    assert model.module.normalize(grey).abs().max() < 1e-6


def test_unknown_model_name_is_named():
    with pytest.raises(ValueError, match="resnet_57.*resnet_20"):
        resnet_cifar('resnet_57', 10)
