"""Compatibility alias: ``python -m gantools.pipeline`` runs ``python -m gancourse.build``
(the course build behind ``make course``), for scripts written before the move."""

if __name__ == "__main__":
    import sys

    from gancourse.build.pipeline import main

    sys.exit(main())
