"""Graph topology: references, nodes and the frozen, validated :class:`ModelGraph`.

>>> import mml
>>> from mml.graph import ModelGraph, ModelNode, FeatureSetRef, NodeRef
>>> g = ModelGraph.of(ModelNode("enc", "spec", FeatureSetRef("fs")), ModelNode("head", "spec", NodeRef("enc")))
>>> g.topological_order
('enc', 'head')
"""

from mml.graph._draw import to_dot as to_dot, to_mermaid as to_mermaid
from mml.graph._graph import (
    GraphProblem as GraphProblem,
    InvalidGraphError as InvalidGraphError,
    ModelGraph as ModelGraph,
    UnknownNodeError as UnknownNodeError,
)
from mml.graph._join import (
    AbstractJoinNode as AbstractJoinNode,
    ConcatNode as ConcatNode,
    MergeNode as MergeNode,
)
from mml.graph._nodes import AbstractNode as AbstractNode, ModelNode as ModelNode
from mml.graph._refs import (
    FeatureSetRef as FeatureSetRef,
    NodeRef as NodeRef,
    Ref as Ref,
    resolve_featureset as resolve_featureset,
    resolve_keys as resolve_keys,
)
from mml.graph._svg import to_svg as to_svg

__all__ = [
    "AbstractJoinNode",
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
    "resolve_featureset",
    "resolve_keys",
    "to_dot",
    "to_mermaid",
    "to_svg",
]

from mml.graph._build import (
    ForwardResult as ForwardResult,
    GraphState as GraphState,
    NodeShapes as NodeShapes,
    build as build,
    forward as forward,
    gradient_stops as gradient_stops,
)
from mml.graph._conformance import state_mismatches as state_mismatches
from mml.graph._grad import value_and_grad as value_and_grad
from mml.graph._targets import (
    TargetLeaf as TargetLeaf,
    TargetPlan as TargetPlan,
    node_targets as node_targets,
    target_plan as target_plan,
    target_shape as target_shape,
)

__all__ += [
    "ForwardResult",
    "GraphState",
    "NodeShapes",
    "TargetLeaf",
    "TargetPlan",
    "build",
    "forward",
    "gradient_stops",
    "node_targets",
    "state_mismatches",
    "target_plan",
    "target_shape",
    "value_and_grad",
]

# Shared with mml's other packages, not public API (not in __all__, not documented): the
# modules of a package are private (import-linter's "private_modules" contract), so what
# its neighbours use is named here.
from mml.graph._html import graph_html as graph_html  # noqa: E402
from mml.graph._paths import GRADIENT_BACKENDS as GRADIENT_BACKENDS  # noqa: E402
from mml.graph._refs import (  # noqa: E402
    check_label as check_label,
    close_matches as close_matches,
)
from mml.graph._targets import target_leaves as target_leaves  # noqa: E402
