"""Data: reading raw splits, checking them, and padding batches."""

from hf_tl.data.collate import PaddingCollator
from hf_tl.data.length_grouping import sorted_by_length
from hf_tl.data.loading import DATA_DIR_ENV, load_raw_splits, resolve_data_file, with_data_source

__all__ = ["DATA_DIR_ENV", "PaddingCollator", "load_raw_splits", "resolve_data_file", "sorted_by_length",
           "with_data_source"]
