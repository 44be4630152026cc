"""The catalog: data resources (registration, profiling, sensitive fields, masking) and, beside them,
data products, offers and search. Each use-case lives in its own module of this package."""
