"""Helpers shared by several test packages, imported like any module."""
