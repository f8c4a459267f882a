"""Graph topology: references, nodes and the frozen, validated :class:`ModelGraph`.

>>> import mml
>>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef, NodeRef
>>> g = ModelGraph.of(ModelNode("enc", "spec", FeatureSetRef("fs")), ModelNode("head", "spec", NodeRef("enc")))
>>> g.topological_order
('enc', 'head')
"""

from mml.graph._draw import to_dot as to_dot
from mml.graph._draw import to_mermaid as to_mermaid
from mml.graph._graph import (
    GraphProblem as GraphProblem,
)
from mml.graph._graph import (
    InvalidGraphError as InvalidGraphError,
)
from mml.graph._graph import (
    ModelGraph as ModelGraph,
)
from mml.graph._graph import (
    UnknownNodeError as UnknownNodeError,
)
from mml.graph._nodes import (
    AbstractNode as AbstractNode,
)
from mml.graph._nodes import (
    ConcatNode as ConcatNode,
)
from mml.graph._nodes import (
    MergeNode as MergeNode,
)
from mml.graph._nodes import (
    ModelNode as ModelNode,
)
from mml.graph._refs import (
    FeatureSetRef as FeatureSetRef,
)
from mml.graph._refs import (
    NodeRef as NodeRef,
)
from mml.graph._refs import (
    Ref as Ref,
)
from mml.graph._refs import (
    check_label as check_label,
)
from mml.graph._refs import (
    resolve_featureset as resolve_featureset,
)
from mml.graph._refs import (
    resolve_keys as resolve_keys,
)

__all__ = [
    "AbstractNode",
    "ConcatNode",
    "FeatureSetRef",
    "GraphProblem",
    "InvalidGraphError",
    "MergeNode",
    "ModelGraph",
    "ModelNode",
    "NodeRef",
    "Ref",
    "UnknownNodeError",
    "check_label",
    "resolve_featureset",
    "resolve_keys",
    "to_dot",
    "to_mermaid",
]
