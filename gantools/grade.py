"""Compatibility alias: ``python -m gantools.grade`` runs ``python -m gancourse.classgrade``
(a whole class autograded in parallel), for scripts written before the move."""

if __name__ == "__main__":
    import sys

    from gancourse.classgrade.coordinator import main

    sys.exit(main())
