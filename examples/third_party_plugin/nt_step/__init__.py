"""nt-step: an example third-party ntcore plugin providing `Step`."""

from nt_step.step import Step

__all__ = ["Step"]
