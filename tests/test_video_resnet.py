"""The VideoResNets built without torchvision are torchvision's networks: same names, weights per seed, outputs."""

import pytest
import torch
import torchvision.models.video.resnet as tv_resnet

from tspvideo.models.backbones import BACKBONES, PerConvMidplanesBlock
from tspvideo.models.video_resnet import VideoResNet

TORCHVISION_PARTS = {"BasicBlock": tv_resnet.BasicBlock, "BasicStem": tv_resnet.BasicStem,
                     "Conv2Plus1D": tv_resnet.Conv2Plus1D, "Conv3DSimple": tv_resnet.Conv3DSimple,
                     "R2Plus1dStem": tv_resnet.R2Plus1dStem}


class _TorchvisionPerConvBlock(tv_resnet.BasicBlock):
    """R(2+1)D-34's block on torchvision's BasicBlock (the second convolution's own mid-planes), for comparison."""

    def __init__(self, inplanes, planes, conv_builder, stride=1, downsample=None):
        super().__init__(inplanes, planes, conv_builder, stride, downsample)
        midplanes = (planes * planes * 27) // (planes * 9 + 3 * planes)
        self.conv2 = torch.nn.Sequential(conv_builder(planes, planes, midplanes), torch.nn.BatchNorm3d(planes))


def _torchvision_build(name: str) -> torch.nn.Module:
    spec = BACKBONES[name]
    block = _TorchvisionPerConvBlock if spec.block is PerConvMidplanesBlock else TORCHVISION_PARTS[spec.block.__name__]
    model = tv_resnet.VideoResNet(block=block, conv_makers=[TORCHVISION_PARTS[spec.conv_maker.__name__]] * 4,
                                  layers=list(spec.layers), stem=TORCHVISION_PARTS[spec.stem.__name__])
    model.fc = torch.nn.Identity()
    if spec.batchnorm_eps is not None:
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.eps, module.momentum = spec.batchnorm_eps, spec.batchnorm_momentum
    return model


@pytest.mark.parametrize("name", ["r2plus1d_18", "r3d_18", "r2plus1d_34"])
def test_same_network_and_seeded_weights_as_torchvision(name):
    torch.manual_seed(3)
    ours = BACKBONES[name].build()
    after_ours = torch.rand(1)
    torch.manual_seed(3)
    theirs = _torchvision_build(name)
    after_theirs = torch.rand(1)
    assert isinstance(ours, VideoResNet)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key, value in ours_state.items():
        assert torch.equal(value, theirs_state[key]), key
    assert torch.equal(after_ours, after_theirs)  # the random stream is left where torchvision leaves it
    same_names = {"_TorchvisionPerConvBlock": "PerConvMidplanesBlock"}
    assert [type(m).__name__ for m in ours.modules()] == [same_names.get(type(m).__name__, type(m).__name__)
                                                           for m in theirs.modules()]
    assert [repr(m) for m in ours.modules() if not list(m.children())] == [
        repr(m) for m in theirs.modules() if not list(m.children())]  # every layer's settings
    clips = torch.randn(2, 3, 4, 32, 32)
    ours.train(), theirs.train()
    torch.testing.assert_close(ours(clips), theirs(clips), rtol=0, atol=0)
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(clips), theirs(clips), rtol=0, atol=0)


@pytest.mark.parametrize("name", [n for n, spec in BACKBONES.items() if getattr(spec, "any_input_size", False)])
def test_backbones_said_to_take_any_input_size_do(name):
    # check_input_size trusts any_input_size without running the network: the claim itself is checked here.
    from tspvideo.models.backbones import check_input_size, create_backbone

    model = create_backbone(name).eval()
    with torch.no_grad():
        for frames, height, width in [(1, 1, 1), (2, 3, 5), (3, 9, 4), (5, 17, 16)]:
            check_input_size(name, frames, (height, width))
            assert model(torch.rand(1, 3, frames, height, width)).shape == (1, BACKBONES[name].feature_dim)
