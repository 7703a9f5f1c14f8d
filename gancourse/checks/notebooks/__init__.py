"""One checks module per notebook: ``nb<assignment>.py``, e.g. ``nb01_basic_gan.py``.

Test cells never import these directly: :func:`gancourse.checks.load` compiles a fresh
copy from source for every test cell.
"""
