"""The kopt release number, read by setup.py and exposed as ``kopt.__version__``."""

__version__ = "0.1.0"
