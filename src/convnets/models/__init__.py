"""Model families, one file each; every model offers forward_features / forward_head /
reset_classifier (see :mod:`convnets.models._base`)."""
from ._base import ConvNet, create_model, list_models, register_model
from .simple import SimpleCNN, simple_cnn

# Each family adds its import line below (one line per family file).
