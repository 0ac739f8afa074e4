"""The single place that holds the tserver version (read by setup.cfg)."""

__all__ = ["__version__"]

__version__ = "1.0.0"
