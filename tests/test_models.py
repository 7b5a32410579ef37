import pytest
import torch

from clbench.errors import ConfigError
from clbench.models import ModelParams, build_model


@pytest.mark.parametrize(
    ("name", "shape", "feature_dim"),
    [
        ("alexnet", (3, 32, 32), 2048),
        ("resnet18", (3, 32, 32), 640),
        ("resnet18-mini", (3, 84, 84), 1440),
        ("mlp", (1, 28, 28), 100),
        ("small-cnn", (1, 8, 8), 128),
        ("small-cnn", (1, 28, 28), 128),
    ],
)
def test_models_have_the_protocol_feature_sizes(name, shape, feature_dim):
    model = build_model(name, shape, n_heads=3, n_classes=10, params=ModelParams())
    assert all(h.in_features == feature_dim and h.bias is None for h in model.heads)
    x = torch.randn(4, *shape)
    assert model(x, torch.tensor([0, 1, 2, 0])).shape == (4, 10)


def test_paper_models_have_no_biases_and_batch_statistics_by_default():
    for name, shape in (("alexnet", (3, 32, 32)), ("resnet18", (3, 32, 32))):
        model = build_model(name, shape, 2, 10, ModelParams())
        layers = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
        assert layers and all(m.bias is None for m in layers)
        bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._NormBase)]
        assert bns and not any(bn.track_running_stats for bn in bns)
    model = build_model("alexnet", (3, 32, 32), 2, 10, ModelParams(track_running_stats=True))
    assert all(
        m.track_running_stats for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)
    )


def test_resnet_has_twenty_conv_weights_with_named_shortcuts():
    model = build_model("resnet18", (3, 32, 32), 1, 10, ModelParams())
    convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 20
    assert sum(n.endswith("shortcut.0") for n in convs) == 3


def test_each_sample_goes_through_its_own_tasks_head():
    torch.manual_seed(0)
    model = build_model("mlp", (1, 8, 8), n_heads=3, n_classes=2, params=ModelParams()).eval()
    x = torch.randn(6, 1, 8, 8)
    tasks = torch.tensor([2, 0, 1, 2, 1, 0])
    mixed = model(x, tasks)
    for k in range(3):
        alone = model.heads[k](model.backbone(x[tasks == k]))
        torch.testing.assert_close(mixed[tasks == k], alone)


def test_single_head_ignores_task_labels():
    model = build_model("mlp", (1, 28, 28), n_heads=1, n_classes=10, params=ModelParams()).eval()
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(model(x, torch.tensor([0, 5, 9])), model.heads[0](model.backbone(x)))


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(
        ConfigError, match="model alexnet expects 3x32x32 inputs, the benchmark gives 1x8x8"
    ):
        build_model("alexnet", (1, 8, 8), 1, 10, ModelParams())
    with pytest.raises(ConfigError, match="unknown model 'vgg'; valid models: alexnet"):
        build_model("vgg", (1, 8, 8), 1, 10, ModelParams())
