"""scalebench: a benchmark suite for scale generalisation of image networks.

Train a network at one image scale, test it on copies of the test set rescaled over a factor of 4,
and compare models on a leaderboard. See README.md for the two set-up commands and a CLI tour.
"""

__version__ = "0.1.0"
