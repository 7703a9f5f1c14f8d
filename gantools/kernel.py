"""Compatibility alias: ``python -m gantools.kernel`` (the command of kernel specs installed
before the course's Jupyter kernel moved to :mod:`gancourse.kernel`) starts that kernel."""

if __name__ == "__main__":
    import sys

    from gancourse.kernel import main

    sys.exit(main())
