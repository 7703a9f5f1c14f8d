"""The course build: ``python -m gancourse.build`` (``make course``); see
:mod:`gancourse.build.pipeline`."""
