"""Revision files: one per schema change, named <revision id>_<what>.py."""
