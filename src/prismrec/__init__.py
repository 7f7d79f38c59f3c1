"""prismrec: recommendation that follows each user's dynamic interests."""

__version__ = "0.1.0"
