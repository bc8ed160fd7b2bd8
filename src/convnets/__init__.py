"""convnets: the library behind the course companion to lecture 5, «Свёрточные архитектуры».

Submodules (import what you need; nothing heavy is imported here):

- :mod:`convnets.data`: offline datasets (MNIST 5k, UCI digits, photos) and seeded loaders
- :mod:`convnets.train`: ``fit``, ``evaluate``, ``History``, checkpoints, ``seed_everything``
- :mod:`convnets.utils`: device choice, parameter counts, model summaries
- :mod:`convnets.models`: the architectures of the lecture
- :mod:`convnets.norm`, :mod:`convnets.init`, :mod:`convnets.augment`, :mod:`convnets.transfer`,
  :mod:`convnets.interpret`, :mod:`convnets.plots`, :mod:`convnets.widgets`,
  :mod:`convnets.grading`: one per part of the lecture
"""
__version__ = "0.1.0"
