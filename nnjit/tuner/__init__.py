"""Lite schedule spaces, on-device measurement and the kernel database."""
