"""Schema 1 alone: a build of the code that is older than the store (StoreFromFuture tests)."""
