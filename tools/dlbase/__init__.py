"""dlbase: build, verify and publish reproducible PyTorch + CUDA + Albumentations images."""

__version__ = "0.1.0"
