"""Model families, one file each; every model offers forward_features / forward_head /
reset_classifier (see :mod:`convnets.models._base`)."""
from ._base import ConvNet, create_model, list_models, register_model
from .simple import SimpleCNN, simple_cnn

# Each family adds its import line below (one line per family file).
from .resnet import ResNet, BasicBlock, Bottleneck, resnet18, resnet34, resnet50, resnet101, resnet152
from .resnet_cifar import CifarResNet, resnet_cifar, plain_cifar
from .lenet import LeNet5, lenet5
from .alexnet import AlexNet, alexnet, alexnet_mini
from .vgg import VGG, VGG_CONFIGS, vgg, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn, vgg_mini
from .googlenet import GoogLeNet, Inception, googlenet, googlenet_mini
from .xception import Xception, SeparableConv2d, xception
from .se import SqueezeExcitation, SEBottleneck, se_resnet50
from .mobilenet import MobileNetV2, InvertedResidual, mobilenet_v2
from .efficientnet import EfficientNet, MBConv, efficientnet, efficientnet_b0
from .preact_resnet import PreActResNet, PreActBasicBlock, PreActBottleneck, preact_resnet_cifar
from .densenet import DenseNet, DenseBlock, densenet, densenet121, densenet169
from .highway import HighwayBlock
from .inception_resnet import InceptionResNetA
from ._base import check_images, model_input_size  # the input check and the registered input sizes
from .plain import PlainDeepCNN, PlainSequential, plain_deep_cnn, plain_mlp, plain_cnn
from .nin import NiN, mlpconv, nin_mini
