"""The kernel engine: how a network's `kernel_fn` runs (see README.md).

Nothing is imported here, so `import ntcore._network.<module>` loads only
what that module needs.
"""
