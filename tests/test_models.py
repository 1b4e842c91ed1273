"Bodies: output sizes, parameter counts, DropBlock behaviour and the backbone registry."
import pytest
import torch

from mtl_meta.core import MtlMetaError
from mtl_meta.models import (BACKBONES, MLP, Conv4, DropBlock, L2Normalize, ResNet12, count_parameters,
                             make_backbone)

torch.set_num_threads(1)


@pytest.mark.parametrize("channels,size,dim", [(1, 28, 64), (3, 84, 1600), (3, 32, 256)])
def test_conv4_out_dim_matches_forward(channels, size, dim):
    net = Conv4(channels, size).eval()
    assert net.out_dim == dim
    assert net(torch.randn(2, channels, size, size)).shape == (2, dim)


def test_conv4_parameter_count():
    # 4 conv3x3 (no bias) + 4 BN (weight, bias): 1*64*9 + 3*64*64*9 + 8*64
    assert count_parameters(Conv4(1, 28)) == 576 + 3 * 36864 + 512


def test_conv4_rejects_tiny_images():
    with pytest.raises(MtlMetaError):
        Conv4(1, 8)


@pytest.mark.parametrize("size,pool,dim", [(32, True, 640), (32, False, 640 * 2 * 2), (84, False, 640 * 5 * 5)])
def test_resnet12_out_dim(size, pool, dim):
    net = ResNet12(3, size, channels=(8, 8, 8, 640) if not pool else (8, 8, 8, 640), avg_pool=pool).eval()
    assert net.out_dim == dim
    with torch.no_grad():
        assert net(torch.randn(2, 3, size, size)).shape == (2, dim)


def test_resnet12_dropblock_only_in_last_two_blocks():
    net = ResNet12(3, 32, channels=(4, 4, 4, 4))
    assert [b.dropblock is not None for b in net.blocks] == [False, False, True, True]
    assert not any(b.dropblock is not None for b in ResNet12(3, 32, channels=(4, 4, 4, 4), dropblock=False).blocks)


def test_resnet12_eval_is_deterministic_train_is_not():
    torch.manual_seed(0)
    net = ResNet12(3, 32, channels=(4, 4, 8, 8), drop_rate=0.5)
    x = torch.randn(4, 3, 32, 32)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))


def test_dropblock_identity_in_eval_and_rate_in_train():
    torch.manual_seed(0)
    db = DropBlock(drop_rate=0.1, block_size=3)
    x = torch.ones(8, 16, 11, 11)
    db.eval()
    assert torch.equal(db(x), x)
    db.train()
    y = db(x)
    dropped = (y == 0).float().mean().item()
    # gamma is chosen so that about drop_rate of the units are dropped (overlaps make it slightly less)
    assert 0.05 < dropped < 0.15
    # kept units are rescaled so the mean activation is preserved
    assert abs(y.mean().item() - 1.0) < 1e-4
    # dropped units come in blocks: every zero has a zero neighbour
    z = (y == 0)[0, 0]
    if z.any():
        i, j = map(int, z.nonzero()[0])
        assert z[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].sum() > 1


def test_mlp_and_normalize():
    net = MLP(1, 40, 2)
    assert net.out_dim == 40 and net(torch.randn(5, 1)).shape == (5, 40)
    assert count_parameters(net) == (1 * 40 + 40) + (40 * 40 + 40)
    z = L2Normalize()(torch.randn(3, 7) * 10)
    assert torch.allclose(z.norm(dim=-1), torch.ones(3))


def test_make_backbone_by_name():
    assert set(BACKBONES) == {"conv4", "resnet12", "mlp", "resnet18"}   # resnet18: torchvision's, issue 29
    assert make_backbone("conv4", 1, 28).out_dim == 64
    assert make_backbone("mlp", 3, 0, hidden=8).out_dim == 8
    assert make_backbone("resnet12", 3, 32, channels=(4, 4, 4, 8)).out_dim == 8
    assert make_backbone("resnet18", 1, 32).out_dim == 512


def test_make_backbone_unknown_name_lists_known():
    with pytest.raises(MtlMetaError) as e:
        make_backbone("vgg", 3, 84)
    msg = str(e.value)
    assert "vgg" in msg and "conv4" in msg and "resnet12" in msg and "\n" not in msg


def test_make_backbone_bad_option_is_one_line():
    with pytest.raises(MtlMetaError) as e:
        make_backbone("conv4", 1, 28, widht=3)
    assert "conv4" in str(e.value)
