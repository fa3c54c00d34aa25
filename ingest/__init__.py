"""walake: a local-first WhatsApp analytics lake."""

__version__ = "0.1.0"
