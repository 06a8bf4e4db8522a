"""Data stages: data sets, stratified split with a sealed test part, train-only
standardization and train-only augmentation. numpy, pandas and sklearn generators only.

Order used by the pipeline (see docs/ARCHITECTURE.md and docs/datasets.md):
make_dataset / dataset_from_frame -> split_dataset or split_with_target -> augment(train, raw
features) -> fit_standardizer(un-augmented train) -> transform train, dev, test, served inputs.
"""

from pipeline.data.augment import AUGMENTATIONS, augment
from pipeline.data.dataset import Dataset
from pipeline.data.registry import DATASETS, dataset_params, digits, make_dataset
from pipeline.data.digest import array_digest
from pipeline.data.sealed import SealedSplit, Split, Splits
from pipeline.data.split import MIN_PER_CLASS, split_dataset, split_with_target
from pipeline.data.standardize import Standardizer, fit_standardizer
from pipeline.data.tables import dataset_from_frame, read_table

__all__ = [
    "AUGMENTATIONS", "DATASETS", "MIN_PER_CLASS", "Dataset", "SealedSplit", "Split", "Splits", "Standardizer",
    "array_digest", "augment", "dataset_from_frame", "dataset_params", "digits", "fit_standardizer",
    "make_dataset", "read_table", "split_dataset", "split_with_target",
]
