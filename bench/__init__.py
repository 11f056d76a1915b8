"""Figures a platform team reads before trusting hookpress: chaos, fuzz, benchmarks.

Run through nox (`nox -s chaos`, `nox -s fuzz`, `nox -s bench`); results go to
`bench/results/` as JSON and Markdown.
"""
