"""Schema of the store benchmark's workload (a migrations package for Database.open)."""
