"""Headless adapter: the `dsnode` command line (and, later, the daemon and watch folders)."""
