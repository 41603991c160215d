"""The test suite, a package so that benches (`python -m bench.scoring_speed`) can import
its tiny-model builder as `tests.tiny_models`; helpers shared by test files live in `tests/support.py`."""
