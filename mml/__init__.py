"""mml: machine-learning pipelines from small immutable parts.

Everything public is reachable from here; submodules are imported on first use so that
``import mml`` stays fast and never imports torch or tensorflow.

>>> import mml
>>> fs = mml.FeatureSet.from_dict({"x": [1.0, 2.0, 3.0], "y": [0.0, 1.0, 0.0]},
...                               features=["x"], targets=["y"], label="toy")
>>> len(fs)
3
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mml import random as random
from mml.errors import (
    ArtifactError as ArtifactError,
    BackendError as BackendError,
    CallbackError as CallbackError,
    ConfigError as ConfigError,
    DataError as DataError,
    DeviceError as DeviceError,
    GraphError as GraphError,
    MMLError as MMLError,
    NotInvertibleError as NotInvertibleError,
    RemovedNameError as RemovedNameError,
    SamplerError as SamplerError,
    ScalerError as ScalerError,
    SchemaError as SchemaError,
    ShapeError as ShapeError,
    SplitError as SplitError,
    TrainingError as TrainingError,
    UntrustedTypeError as UntrustedTypeError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    # What mypy and IDEs see: every name of ``_LAZY`` below, re-exported from the module that
    # defines it, so ``mml.FeatureSet``, ``mml.run``, ... carry their real types. At run time
    # nothing here is imported (``import mml`` stays lazy); tests/test_public_api.py keeps
    # this block and ``_LAZY`` naming the same names from the same modules.
    from mml import (
        backends as backends,
        callbacks as callbacks,
        data as data,
        datasets as datasets,
        fields as fields,
        graph as graph,
        inference as inference,
        io as io,
        models as models,
        observers as observers,
        optim as optim,
        samplers as samplers,
        scalers as scalers,
        splitters as splitters,
        strategies as strategies,
        testing as testing,
        training as training,
        views as views,
    )
    from mml.data import (
        Batch as Batch,
        FeatureSet as FeatureSet,
        FeatureSetView as FeatureSetView,
        SampleData as SampleData,
        col as col,
    )
    from mml.graph import (
        ConcatNode as ConcatNode,
        FeatureSetRef as FeatureSetRef,
        GraphState as GraphState,
        MergeNode as MergeNode,
        ModelGraph as ModelGraph,
        ModelNode as ModelNode,
        NodeRef as NodeRef,
        build as build,
        forward as forward,
        to_dot as to_dot,
        to_mermaid as to_mermaid,
    )
    from mml.inference import Predictor as Predictor, export as export, transform_like as transform_like
    from mml.io import load as load, save as save
    from mml.models import (
        KerasModel as KerasModel,
        SequentialCNN as SequentialCNN,
        SequentialMLP as SequentialMLP,
        SklearnModel as SklearnModel,
        TemporalCNN as TemporalCNN,
        TorchModule as TorchModule,
    )
    from mml.samplers import (
        MultiStreamSampler as MultiStreamSampler,
        NSampler as NSampler,
        PairedSampler as PairedSampler,
        SimilarityCondition as SimilarityCondition,
        SimpleSampler as SimpleSampler,
        TripletSampler as TripletSampler,
        dissimilar as dissimilar,
        similar as similar,
    )
    from mml.scalers import ScalerRecord as ScalerRecord, get_scaler as get_scaler
    from mml.splitters import (
        ConditionSplitter as ConditionSplitter,
        KFoldSplitter as KFoldSplitter,
        RandomSplitter as RandomSplitter,
        SplitterRecord as SplitterRecord,
    )
    from mml.strategies import (
        Choice as Choice,
        CVResult as CVResult,
        IntUniform as IntUniform,
        LocalExecutor as LocalExecutor,
        LogUniform as LogUniform,
        ProcessExecutor as ProcessExecutor,
        RayExecutor as RayExecutor,
        SweepResult as SweepResult,
        Uniform as Uniform,
        cross_validate as cross_validate,
        sweep as sweep,
    )
    from mml.training import (
        AppliedLoss as AppliedLoss,
        ErrorRecord as ErrorRecord,
        EvalPhase as EvalPhase,
        EvalResult as EvalResult,
        ExecutionContext as ExecutionContext,
        Experiment as Experiment,
        FitPhase as FitPhase,
        History as History,
        InputBinding as InputBinding,
        Loss as Loss,
        PhaseGroup as PhaseGroup,
        TrainPhase as TrainPhase,
        TrainState as TrainState,
        evaluate as evaluate,
        init as init,
        run as run,
        run_phase as run_phase,
        steps as steps,
    )

# public name -> module that defines it (imported lazily on first attribute access)
_LAZY: dict[str, str] = {
    # io
    "save": "mml.io",
    "load": "mml.io",
    "io": "mml.io",
    # data
    "data": "mml.data",
    "FeatureSet": "mml.data",
    "FeatureSetView": "mml.data",
    "Batch": "mml.data",
    "SampleData": "mml.data",
    "col": "mml.data",
    "datasets": "mml.datasets",
    "testing": "mml.testing",
    "fields": "mml.fields",
    # processing
    "splitters": "mml.splitters",
    "scalers": "mml.scalers",
    "samplers": "mml.samplers",
    "RandomSplitter": "mml.splitters",
    "ConditionSplitter": "mml.splitters",
    "KFoldSplitter": "mml.splitters",
    "SimpleSampler": "mml.samplers",
    "NSampler": "mml.samplers",
    "PairedSampler": "mml.samplers",
    "TripletSampler": "mml.samplers",
    "MultiStreamSampler": "mml.samplers",
    "SimilarityCondition": "mml.samplers",
    "similar": "mml.samplers",
    "dissimilar": "mml.samplers",
    "get_scaler": "mml.scalers",
    "SplitterRecord": "mml.splitters",
    "ScalerRecord": "mml.scalers",
    # graph
    "graph": "mml.graph",
    "models": "mml.models",
    "backends": "mml.backends",
    "ModelGraph": "mml.graph",
    "ModelNode": "mml.graph",
    "ConcatNode": "mml.graph",
    "MergeNode": "mml.graph",
    "FeatureSetRef": "mml.graph",
    "NodeRef": "mml.graph",
    "GraphState": "mml.graph",
    "SequentialMLP": "mml.models",
    "SequentialCNN": "mml.models",
    "TemporalCNN": "mml.models",
    "TorchModule": "mml.models",
    "KerasModel": "mml.models",
    "SklearnModel": "mml.models",
    "build": "mml.graph",
    "forward": "mml.graph",
    "to_mermaid": "mml.graph",
    "to_dot": "mml.graph",
    # training
    "optim": "mml.optim",
    "training": "mml.training",
    "callbacks": "mml.callbacks",
    "strategies": "mml.strategies",
    "observers": "mml.observers",
    "views": "mml.views",
    "Loss": "mml.training",
    "AppliedLoss": "mml.training",
    "TrainPhase": "mml.training",
    "EvalPhase": "mml.training",
    "FitPhase": "mml.training",
    "PhaseGroup": "mml.training",
    "Experiment": "mml.training",
    "TrainState": "mml.training",
    "ExecutionContext": "mml.training",
    "History": "mml.training",
    "init": "mml.training",
    "steps": "mml.training",
    "run_phase": "mml.training",
    "run": "mml.training",
    "cross_validate": "mml.strategies",
    "sweep": "mml.strategies",
    "CVResult": "mml.strategies",
    "SweepResult": "mml.strategies",
    "LocalExecutor": "mml.strategies",
    "ProcessExecutor": "mml.strategies",
    "RayExecutor": "mml.strategies",
    "Choice": "mml.strategies",
    "Uniform": "mml.strategies",
    "LogUniform": "mml.strategies",
    "IntUniform": "mml.strategies",
    "InputBinding": "mml.training",
    "evaluate": "mml.training",
    "EvalResult": "mml.training",
    "ErrorRecord": "mml.training",
    # inference
    "inference": "mml.inference",
    "export": "mml.inference",
    "Predictor": "mml.inference",
    "transform_like": "mml.inference",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mml' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name == f"mml.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ArtifactError",
    "BackendError",
    "CallbackError",
    "ConfigError",
    "DataError",
    "DeviceError",
    "GraphError",
    "MMLError",
    "NotInvertibleError",
    "RemovedNameError",
    "SamplerError",
    "ScalerError",
    "SchemaError",
    "ShapeError",
    "SplitError",
    "TrainingError",
    "UntrustedTypeError",
    "random",
    *_LAZY,
]
