"""Performance benchmarks for issue 6 ("Fast where it counts"): `python -m tests.benchmarks`.

Not part of the test suite: no file here is named test_*, so pytest never collects them.
"""
