"""gantools: the helper library of the GAN course.

* :mod:`gantools.data` — bundled and downloadable datasets, one ``load()`` entry point;
* :mod:`gantools.models` — DCGAN, conditional and 2-D models, minibatch layers,
  spectral normalization;
* :mod:`gantools.losses` — adversarial losses, penalties, weight clipping, a registry;
* :mod:`gantools.training` — the GradientTape training loop, EMA, diagnostics;
* :mod:`gantools.augment` — exact-gradient augmentations and adaptive augmentation (ADA);
* :mod:`gantools.metrics` — KID, FID, feature extractors, coverage;
* :mod:`gantools.viz` — grids, curves, interpolations, neighbours, live dashboard;
* :mod:`gantools.grading`, :mod:`gantools.pipeline`, :mod:`gantools.course` — the
  autograding checks, the course build, and the notebooks' full/short budgets;
* ``python -m gantools train`` — the command line;
* :mod:`gantools.runtime`, :mod:`gantools.kernel` — the environment TensorFlow runs in
  (oneDNN on unless the user chose otherwise), and the course's Jupyter kernel.

Importing gantools before TensorFlow applies :data:`gantools.runtime.COURSE_ENVIRONMENT`.
"""

from gantools import runtime as _runtime

if not _runtime.tensorflow_imported():  # TensorFlow reads the variables when imported
    _runtime.configure()

__version__ = "0.1.0"
