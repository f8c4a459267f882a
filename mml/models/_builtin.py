"""Built-in architectures with the same meaning on torch and Keras.

All three take a per-sample input shape and produce ``output_shape`` per sample (``None``
means "the target shape"). Shapes never include the batch dimension.

>>> from mml.models import SequentialMLP, SequentialCNN, TemporalCNN
>>> SequentialMLP(hidden=(32,), output_shape=(3,)).infer_output_shape((4, 4), None)
(3,)
>>> SequentialCNN(channels=(4, 8), pooling=2, flatten_output=False).infer_output_shape((1, 32), None)
(8, 8)
>>> TemporalCNN(channels=(8,)).infer_output_shape((2, 50), (1,))
(1,)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import attrs

from mml.errors import ConfigError, ShapeError
from mml.models._base import (
    AbstractModel,
    check_activation,
    check_backend,
    check_dropout,
    optional_shape,
    resolve_output,
    shape_tuple,
)

__all__ = ["SequentialMLP", "SequentialCNN", "TemporalCNN", "signal_shape"]

_NN_BACKENDS = ("torch", "tensorflow")


def _layer_sizes(value: Sequence[int]) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"layer sizes must be a tuple of positive ints, got {value!r}") from exc
    if any(v <= 0 for v in out):
        raise ConfigError(f"layer sizes must be positive ints, got {value!r}")
    return out


def _positive_int(instance: object, attribute: attrs.Attribute, value: int) -> None:  # type: ignore[type-arg]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{type(instance).__name__}.{attribute.name} must be a positive int, got {value!r}")


def signal_shape(spec: object, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(channels, length)`` of a 1-D signal input: ``(length,)`` means one channel.

    >>> signal_shape(None, (100,)), signal_shape(None, (3, 100))
    ((1, 100), (3, 100))
    """
    if len(input_shape) == 1:
        return 1, int(input_shape[0])
    if len(input_shape) == 2:
        return int(input_shape[0]), int(input_shape[1])
    raise ShapeError(
        f"{type(spec).__name__} takes 1-D signals: a per-sample input of shape (length,) or "
        f"(channels, length), got {input_shape} (rank {len(input_shape)}); reshape the feature or use "
        "SequentialMLP for other ranks"
    )


@attrs.frozen
class SequentialMLP(AbstractModel):
    """Fully connected network: flatten, ``Linear`` + activation per hidden size, linear head.

    Dropout (rate ``dropout``) follows every hidden activation. The output is reshaped to
    ``output_shape`` (``None`` means the target shape).

    >>> spec = SequentialMLP(hidden=(64, 64), activation="gelu", output_shape=(1,))
    >>> spec.kind, spec.backend
    ('model.mlp', 'torch')
    """

    kind: ClassVar[str] = "model.mlp"

    hidden: tuple[int, ...] = attrs.field(default=(64, 64), converter=_layer_sizes)
    activation: str = attrs.field(default="relu", validator=check_activation)
    dropout: float = attrs.field(default=0.0, converter=float, validator=check_dropout)
    output_shape: tuple[int, ...] | None = attrs.field(default=None, converter=optional_shape)
    backend: str = attrs.field(default="torch", validator=check_backend(_NN_BACKENDS))

    def infer_output_shape(
        self, input_shape: tuple[int, ...], target_shape: tuple[int, ...] | None
    ) -> tuple[int, ...]:
        """The declared ``output_shape`` or the target shape.

        >>> SequentialMLP().infer_output_shape((8,), (2,))
        (2,)
        """
        shape_tuple(input_shape, "SequentialMLP input shape")
        return resolve_output(self, self.output_shape, target_shape)


def _conv_lengths(spec: SequentialCNN, length: int) -> list[int]:
    lengths = []
    for i, _ in enumerate(spec.channels):
        if spec.pooling > 1:
            if length < spec.pooling:
                raise ShapeError(
                    f"SequentialCNN: after conv block {i} the signal has length {length}, shorter than "
                    f"pooling={spec.pooling}; use a longer input, fewer channel blocks or pooling=1"
                )
            length = length // spec.pooling
        lengths.append(length)
    return lengths


@attrs.frozen
class SequentialCNN(AbstractModel):
    """1-D convolutional network: per block ``Conv1d`` ("same" padding), activation, max-pool, dropout.

    Input per sample is ``(length,)`` (one channel) or ``(channels, length)``. With
    ``flatten_output=True`` the feature map is flattened (channel-major) and a linear head
    maps it to ``output_shape``; with ``flatten_output=False`` the output is the feature map
    ``(channels[-1], length_out)``.

    >>> SequentialCNN(channels=(16, 32), kernel_size=5).kind
    'model.cnn'
    """

    kind: ClassVar[str] = "model.cnn"

    channels: tuple[int, ...] = attrs.field(default=(16, 32), converter=_layer_sizes)
    kernel_size: int = attrs.field(default=3, validator=_positive_int)
    pooling: int = attrs.field(default=2, validator=_positive_int)
    dropout: float = attrs.field(default=0.0, converter=float, validator=check_dropout)
    flatten_output: bool = attrs.field(default=True)
    activation: str = attrs.field(default="relu", validator=check_activation)
    output_shape: tuple[int, ...] | None = attrs.field(default=None, converter=optional_shape)
    backend: str = attrs.field(default="torch", validator=check_backend(_NN_BACKENDS))

    def __attrs_post_init__(self) -> None:
        if not self.channels:
            raise ConfigError("SequentialCNN needs at least one conv block: channels=(16,) or more")

    def feature_map_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int]:
        """``(channels[-1], length_out)`` of the last conv block.

        >>> SequentialCNN(channels=(4,), pooling=2).feature_map_shape((10,))
        (4, 5)
        """
        _, length = signal_shape(self, input_shape)
        return self.channels[-1], _conv_lengths(self, length)[-1]

    def infer_output_shape(
        self, input_shape: tuple[int, ...], target_shape: tuple[int, ...] | None
    ) -> tuple[int, ...]:
        """Feature map shape when not flattening, else the declared or target shape.

        >>> SequentialCNN().infer_output_shape((64,), (1,))
        (1,)
        """
        fmap = self.feature_map_shape(input_shape)
        if not self.flatten_output:
            if self.output_shape is not None and self.output_shape != fmap:
                raise ShapeError(
                    f"SequentialCNN(flatten_output=False) outputs its feature map {fmap}, but output_shape="
                    f"{self.output_shape}; drop output_shape or set flatten_output=True to add a linear head"
                )
            return fmap
        return resolve_output(self, self.output_shape, target_shape)


@attrs.frozen
class TemporalCNN(AbstractModel):
    """Temporal convolutional network: dilated causal residual blocks, then a linear head.

    Block ``i`` is a causal ``Conv1d`` with dilation ``2**i`` (left padding
    ``(kernel_size - 1) * 2**i``), activation and dropout, added to its input (a 1x1
    convolution matches channels when they differ), then the activation again. The linear head
    reads the features of the **last time step** and maps them to ``output_shape``.

    >>> TemporalCNN(channels=(32, 32, 32)).receptive_field
    15
    """

    kind: ClassVar[str] = "model.tcn"

    channels: tuple[int, ...] = attrs.field(default=(32, 32), converter=_layer_sizes)
    kernel_size: int = attrs.field(default=3, validator=_positive_int)
    dropout: float = attrs.field(default=0.0, converter=float, validator=check_dropout)
    output_shape: tuple[int, ...] | None = attrs.field(default=None, converter=optional_shape)
    activation: str = attrs.field(default="relu", validator=check_activation)
    backend: str = attrs.field(default="torch", validator=check_backend(_NN_BACKENDS))

    def __attrs_post_init__(self) -> None:
        if not self.channels:
            raise ConfigError("TemporalCNN needs at least one block: channels=(32,) or more")

    @property
    def receptive_field(self) -> int:
        """How many past time steps the last output step sees."""
        return 1 + sum((self.kernel_size - 1) * 2**i for i in range(len(self.channels)))

    def infer_output_shape(
        self, input_shape: tuple[int, ...], target_shape: tuple[int, ...] | None
    ) -> tuple[int, ...]:
        """The declared or target shape (the input must be a 1-D signal).

        >>> TemporalCNN(output_shape=(2,)).infer_output_shape((20,), None)
        (2,)
        """
        signal_shape(self, input_shape)
        return resolve_output(self, self.output_shape, target_shape)
