"""fundwatch — off-site inspection (非现场监督) of social-insurance funds (社会保险基金)."""

__version__ = "0.1.0"
