"""Tests of the reference destination service."""
