"""Packaging details pyproject.toml cannot express: the cached experiment results in
``results/`` ship inside the wheel as the package ``convnets.results``, so that an installed
``convnets`` (Colab, a fresh Jupyter) reads the same numbers as the book."""
from setuptools import find_packages, setup

setup(
    packages=find_packages("src") + ["convnets.results"],
    package_dir={"": "src", "convnets.results": "results"},
    package_data={"convnets.results": ["*.json", "*.pt"]},
)
