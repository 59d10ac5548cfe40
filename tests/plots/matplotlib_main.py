"""How the plots tests that draw (or import the report's styles) end: their unittest main
under this Python, or exit 77 (ctest: skipped) when it has no matplotlib."""
import importlib
import sys
import unittest

SKIP = 77


def main():
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        print(f"SKIP: {sys.executable} has no matplotlib (install python3-matplotlib)")
        sys.exit(SKIP)
    unittest.main(module="__main__", verbosity=2)
