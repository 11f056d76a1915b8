"""The local stack: emulators, a real WordPress and the functions on one machine.

Used by the test harness and by ``nox -s dev``; never bundled into a function.
"""
