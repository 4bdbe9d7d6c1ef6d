"""The video ResNets of the paper (R(2+1)D, R3D), built without importing torchvision.

``import torchvision`` costs about as much as ``import torch`` (its ``ops`` import ``torch._dynamo``), which
every extraction and training paid before its first clip. These modules describe the same networks as
``torchvision.models.video.resnet``: the same parameter names and shapes (torchvision and IG65M files, and
the released TSP checkpoints, load unchanged), the same forward computation, and the same random
initialisation, drawn in the same order (a seed gives torchvision's weights, bit for bit; the tests
compare both).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn


def _bn_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm3d(channels), nn.ReLU(inplace=True)]


class Conv3DSimple(nn.Conv3d):
    """A full 3x3x3 convolution (R3D); ``midplanes`` is unused, taken for a common signature."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int | None = None, stride: int = 1,
                 padding: int = 1) -> None:
        super().__init__(in_planes, out_planes, kernel_size=(3, 3, 3), stride=stride, padding=padding, bias=False)

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        """Stride of the 1x1x1 shortcut convolution that matches this convolution's output."""
        return (stride, stride, stride)


class Conv2Plus1D(nn.Sequential):
    """A 3x3x3 convolution factorised into a 1x3x3 spatial and a 3x1x1 temporal one, with ``midplanes`` between."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1, padding: int = 1) -> None:
        super().__init__(
            nn.Conv3d(in_planes, midplanes, kernel_size=(1, 3, 3), stride=(1, stride, stride),
                      padding=(0, padding, padding), bias=False),
            *_bn_relu(midplanes),
            nn.Conv3d(midplanes, out_planes, kernel_size=(3, 1, 1), stride=(stride, 1, 1), padding=(padding, 0, 0),
                      bias=False),
        )

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        """Stride of the 1x1x1 shortcut convolution that matches this convolution's output."""
        return (stride, stride, stride)


class BasicStem(nn.Sequential):
    """R3D's stem: a 3x7x7 convolution to 64 channels, halving the frame size."""

    def __init__(self) -> None:
        super().__init__(nn.Conv3d(3, 64, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
                         *_bn_relu(64))


class R2Plus1dStem(nn.Sequential):
    """R(2+1)D's stem: a 1x7x7 convolution to 45 channels, then a 3x1x1 one to 64, halving the frame size."""

    def __init__(self) -> None:
        super().__init__(nn.Conv3d(3, 45, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
                         *_bn_relu(45),
                         nn.Conv3d(45, 64, kernel_size=(3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
                         *_bn_relu(64))


ConvMaker = type[Conv3DSimple] | type[Conv2Plus1D]


class BasicBlock(nn.Module):
    """Two convolutions with a residual connection; both convolutions of a (2+1)D block share the first's mid-planes."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, conv_builder: ConvMaker, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        midplanes = (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)
        super().__init__()
        self.conv1 = nn.Sequential(conv_builder(inplanes, planes, midplanes, stride), *_bn_relu(planes))
        self.conv2 = nn.Sequential(conv_builder(planes, planes, midplanes), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class VideoResNet(nn.Module):
    """Stem, four stages of residual blocks (64, 128, 256, 512 channels), global average pool and ``fc``."""

    def __init__(self, block: type[BasicBlock], conv_makers: Sequence[ConvMaker], layers: Sequence[int],
                 stem: Callable[[], nn.Module], num_classes: int = 400) -> None:
        super().__init__()
        self.inplanes = 64
        self.stem = stem()
        self.layer1 = self._make_layer(block, conv_makers[0], 64, layers[0], stride=1)
        self.layer2 = self._make_layer(block, conv_makers[1], 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, conv_makers[2], 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, conv_makers[3], 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        # After every layer exists, in module order: the draws (and so a seed's weights) match torchvision's.
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def _make_layer(self, block: type[BasicBlock], conv_builder: ConvMaker, planes: int, blocks: int,
                    stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            # Built before the blocks (it is registered after their convolutions, as in torchvision).
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes * block.expansion, kernel_size=1,
                          stride=conv_builder.get_downsample_stride(stride), bias=False),
                nn.BatchNorm3d(planes * block.expansion))
        stage = [block(self.inplanes, planes, conv_builder, stride, downsample)]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes, conv_builder) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))
