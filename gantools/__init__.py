"""gantools: the helper library of the GAN course.

* :mod:`gantools.data` — bundled and downloadable datasets, one ``load()`` entry point;
* :mod:`gantools.models` — DCGAN, conditional and 2-D models, minibatch layers,
  spectral normalization;
* :mod:`gantools.losses` — adversarial losses, penalties, weight clipping, a registry;
* :mod:`gantools.training` — the GradientTape training loop, EMA, diagnostics;
* :mod:`gantools.augment` — exact-gradient augmentations and adaptive augmentation (ADA);
* :mod:`gantools.metrics` — KID, FID, feature extractors, coverage;
* :mod:`gantools.viz` — grids, curves, interpolations, neighbours, live dashboard;
* ``python -m gantools train`` — the command line;
* :mod:`gantools.runtime` — the environment TensorFlow runs in (oneDNN on unless the user
  chose otherwise).

The course that teaches with it (the notebooks' budgets, their Jupyter kernel, the build
and the autograder) is the separate package :mod:`gancourse`; importing gantools imports
none of it, nor nbgrader. (``gantools.grading``, ``gantools.course``, ``gantools.kernel``,
``gantools.grade`` and ``gantools.pipeline`` remain as thin aliases of their new homes, for
notebooks and scripts written before the split; nothing here imports them.)

Importing gantools before TensorFlow applies :data:`gantools.runtime.COURSE_ENVIRONMENT`.
"""

from gantools import runtime as _runtime

if not _runtime.tensorflow_imported():  # TensorFlow reads the variables when imported
    _runtime.configure()

__version__ = "0.1.0"
