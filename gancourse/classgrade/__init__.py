"""A whole class autograded in parallel on a Dask cluster: ``python -m gancourse.classgrade``
(:mod:`~gancourse.classgrade.coordinator`), its workers (:mod:`~gancourse.classgrade.worker`,
:mod:`~gancourse.classgrade.child`) and the gradebook records
(:mod:`~gancourse.classgrade.gradebook`)."""
