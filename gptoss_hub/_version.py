"""The package version, single-sourced for setuptools and `gptoss-hub --version`."""

__version__ = "0.1.0"
