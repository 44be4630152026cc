"""Schema of the evidence benchmark's baseline: the evidence entry's columns and index, nothing else."""
