"""Training data and losses (Ray-free): clips with true HR references, degradations, losses.

The loop that uses them is jobs/train/train.py.
"""
