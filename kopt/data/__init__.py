"""Datasets for kopt: bundled digits, TensorFlow Datasets, npz archives and image folders."""

from kopt.data.datasets import load_dataset
from kopt.data.info import DatasetInfo

__all__ = ["DatasetInfo", "load_dataset"]
