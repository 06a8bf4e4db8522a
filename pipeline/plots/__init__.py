"""Figures as values: every function returns a matplotlib `Figure` and never shows or saves it.

The Agg backend is selected inside each module through `matplotlib.figure.Figure` (no pyplot
state), so figures can be built in tests, workers and servers without a display.
"""
