"""Kakehashi (架け橋): open-source CTI contact-center platform."""

__version__ = "0.1.0"
