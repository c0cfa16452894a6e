"""Pooled pretraining on a Dask cluster (``pip install tabtune[dask]``).

:func:`pretrain_on_dask` reads the store as a ``dask.dataframe`` of whole brands per
partition, builds the task's features and the brand-context statistics on the workers, and
trains the global model with ``lightgbm.dask``; the result is an ordinary
``TabTuneRegressor`` / ``TabTuneClassifier``. Dask is imported only when it is called.
"""

from tabtune.distributed.pretraining import DaskPretrainResult, pretrain_on_dask

__all__ = ["DaskPretrainResult", "pretrain_on_dask"]
