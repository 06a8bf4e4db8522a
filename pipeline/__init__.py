"""nn-pipeline: a NumPy neural network with train/dev/test discipline.

Nothing is imported here on purpose: `import pipeline` must stay cheap and free of side
effects (no mlflow, no optuna), so the numeric core can be used from a notebook or a test
without paying for the tracking stack.
"""

__version__ = "0.1.0"
