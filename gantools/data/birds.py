"""``caltech_birds``: Caltech-UCSD Birds 2011 through TensorFlow Datasets (optional).

About 6,000 train and 5,800 test photographs of 200 bird species, each with the bird's
bounding box. As in the data-efficient GAN (ADA) example, each bird is cut out with a
square crop around its box, padded by 25 % of the box's longer side and shrunk where
the image border would cut it, then resized with area averaging (the right filter
for down-sampling) to 64×64 by default.

Install the extra with ``pip install "gantools[birds]"``. The first call downloads
and prepares the data into TensorFlow Datasets' folder (``$TFDS_DATA_DIR`` or
``~/tensorflow_datasets``); offline that fails fast with a clear message.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from .remote import DataUnavailableError, _reachable, offline_requested

TFDS_NAME = "caltech_birds2011"
DEFAULT_SIZE = 64
PADDING = 0.25
_ORIGIN = "https://data.caltech.edu/records/65de6-vp158"


def square_crop(image, bbox, image_size: int = DEFAULT_SIZE, padding: float = PADDING):
    """Crop a padded square around a bounding box, then area-resize it.

    ``image``: uint8 (H, W, 3). ``bbox``: (ymin, xmin, ymax, xmax) as fractions of the
    height and width (TensorFlow Datasets' convention). The crop is centred on the
    box; its side is ``(1 + padding)`` times the box's longer side, reduced per axis
    so the crop stays inside the image. Returns float32 (image_size, image_size, 3)
    in [0, 1].
    """
    image = tf.convert_to_tensor(image)
    height = tf.cast(tf.shape(image)[0], tf.float32)
    width = tf.cast(tf.shape(image)[1], tf.float32)
    box = tf.cast(bbox, tf.float32) * tf.stack([height, width, height, width])
    centre_y = 0.5 * (box[0] + box[2])
    centre_x = 0.5 * (box[1] + box[3])
    side = (1.0 + padding) * tf.maximum(box[2] - box[0], box[3] - box[1])
    crop_h = tf.reduce_min(tf.stack([side, 2.0 * centre_y, 2.0 * (height - centre_y)]))
    crop_w = tf.reduce_min(tf.stack([side, 2.0 * centre_x, 2.0 * (width - centre_x)]))

    def px(value):
        return tf.cast(tf.round(value), tf.int32)

    top = tf.clip_by_value(px(centre_y - 0.5 * crop_h), 0, tf.shape(image)[0] - 1)
    left = tf.clip_by_value(px(centre_x - 0.5 * crop_w), 0, tf.shape(image)[1] - 1)
    crop = tf.image.crop_to_bounding_box(
        image, top, left,
        tf.maximum(1, tf.minimum(px(crop_h), tf.shape(image)[0] - top)),
        tf.maximum(1, tf.minimum(px(crop_w), tf.shape(image)[1] - left)),
    )
    crop = tf.image.resize(tf.cast(crop, tf.float32), (image_size, image_size), method="area")
    return tf.clip_by_value(crop / 255.0, 0.0, 1.0)


def _data_dir() -> Path:
    return Path(os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets")


def read_caltech_birds(split: str, image_size: int = DEFAULT_SIZE):
    """``(float32 (n, s, s, 3) in [-1, 1], labels)`` of one split, cropped and resized."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DataUnavailableError(
            "The caltech_birds dataset needs TensorFlow Datasets, which is not installed.\n"
            'Install the optional extra: pip install "gantools[birds]" '
            "(or pip install tensorflow-datasets).\n"
            "To work offline now, use a bundled dataset instead: gantools.data.load('shapes')."
        ) from e
    data_dir = _data_dir()
    builder = tfds.builder(TFDS_NAME, data_dir=str(data_dir))
    if not builder.is_prepared():
        where = Path(builder.data_dir)
        reason = None
        if offline_requested():
            reason = "GANTOOLS_OFFLINE is set"
        elif not _reachable(_ORIGIN):
            reason = "it is not prepared locally and the network is unreachable"
        if reason:
            raise DataUnavailableError(
                f"The caltech_birds dataset is not available: {reason}.\n"
                f"Missing: the prepared TensorFlow Datasets folder {where}.\n"
                f"On a machine with internet access run tfds.load({TFDS_NAME!r}, "
                f"data_dir={str(data_dir)!r}) (it downloads from {_ORIGIN}) and copy "
                f"{data_dir / TFDS_NAME} to this machine (set TFDS_DATA_DIR to use another "
                "folder).\nTo work offline now, use a bundled dataset instead: "
                "gantools.data.load('shapes')."
            )
        builder.download_and_prepare()
    ds = builder.as_dataset(split=split).map(
        lambda d: (square_crop(d["image"], d["bbox"], image_size), d["label"]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    images, labels = [], []
    for x, y in ds.batch(256).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    x = np.concatenate(images) * 2.0 - 1.0
    return x.astype(np.float32), np.concatenate(labels).astype(np.int32)
