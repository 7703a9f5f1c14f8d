"""What several test modules share: the class-grading harness (``class_grading``,
``grade_class``), the corpora of submissions (``corpus_01``, ``attacks``) and the assertions
every notebook's checks tests make (``grading_helpers``). Imported as ``support.<module>``:
``tests/conftest.py`` puts ``tests/`` on the import path."""
