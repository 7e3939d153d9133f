"""replay: record a Python process line by line, travel through it offline."""

__version__ = "0.1.0"
