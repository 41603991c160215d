"""Benchmarks (timing targets live here, not in tests). Run each from the repository root
as a module, e.g. `python -m bench.scoring_speed --quick`, so `core` and `tests.tiny_models` import."""
