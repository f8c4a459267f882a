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

__all__ = ["SequentialMLP", "SequentialCNN", "TemporalCNN", "image_shape", "signal_shape"]

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


def image_shape(spec: object, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(channels, height, width)`` of a 2-D input: ``(height, width)`` means one channel.

    >>> image_shape(None, (8, 8)), image_shape(None, (3, 8, 8))
    ((1, 8, 8), (3, 8, 8))
    """
    if len(input_shape) == 2:
        return 1, int(input_shape[0]), int(input_shape[1])
    if len(input_shape) == 3:
        return int(input_shape[0]), int(input_shape[1]), int(input_shape[2])
    raise ShapeError(
        f"{type(spec).__name__}(dims=2) takes images: a per-sample input of shape (height, width) or "
        f"(channels, height, width), got {input_shape} (rank {len(input_shape)}); use dims=1 for signals"
    )


def _check_dims(instance: object, attribute: attrs.Attribute, value: int) -> None:  # type: ignore[type-arg]
    if value not in (1, 2) or isinstance(value, bool):
        raise ConfigError(
            f"SequentialCNN.dims must be 1 (Conv1d over signals) or 2 (Conv2d over images), got {value!r}"
        )


@attrs.frozen
class SequentialCNN(AbstractModel):
    """Convolutional network: per block a convolution ("same" padding), activation, max-pool, dropout.

    ``dims=1`` (the default) runs ``Conv1d``: input per sample is ``(length,)`` (one channel)
    or ``(channels, length)`` — so an ``(8, 8)`` image is read as 8 channels of length 8.
    ``dims=2`` runs ``Conv2d`` (square ``kernel_size`` and ``pooling``): input per sample is
    ``(height, width)`` (one channel) or ``(channels, height, width)``. :meth:`convolution`
    says which one runs on a given input. With ``flatten_output=True`` the feature map is
    flattened (channel-major) and a linear head maps it to ``output_shape``; with
    ``flatten_output=False`` the output is the feature map ``(channels[-1], *spatial_out)``.

    >>> SequentialCNN(channels=(16, 32), kernel_size=5).kind
    'model.cnn'
    >>> SequentialCNN(channels=(4,), dims=2, flatten_output=False).infer_output_shape((8, 8), None)
    (4, 4, 4)
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
    dims: int = attrs.field(default=1, validator=_check_dims)

    def __attrs_post_init__(self) -> None:
        if not self.channels:
            raise ConfigError("SequentialCNN needs at least one conv block: channels=(16,) or more")

    def feature_map_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(channels[-1], length_out)`` (``dims=1``) or ``(channels[-1], height_out, width_out)``.

        >>> SequentialCNN(channels=(4,), pooling=2).feature_map_shape((10,))
        (4, 5)
        >>> SequentialCNN(channels=(4,), pooling=2, dims=2).feature_map_shape((3, 10, 6))
        (4, 5, 3)
        """
        if self.dims == 2:
            _, h, w = image_shape(self, input_shape)
            return self.channels[-1], _conv_lengths(self, h)[-1], _conv_lengths(self, w)[-1]
        _, length = signal_shape(self, input_shape)
        return self.channels[-1], _conv_lengths(self, length)[-1]

    def convolution(self, input_shape: tuple[int, ...]) -> str:
        """Which convolution runs on a per-sample ``input_shape``, and how the input is read.

        >>> SequentialCNN().convolution((8, 8))
        'Conv1d over 8 channel(s) of length 8 (pass dims=2 for a 2-D convolution over an 8x8 image)'
        >>> SequentialCNN(dims=2).convolution((8, 8))
        'Conv2d over 1 channel(s) of 8x8'
        """
        if self.dims == 2:
            c, h, w = image_shape(self, input_shape)
            return f"Conv2d over {c} channel(s) of {h}x{w}"
        c, length = signal_shape(self, input_shape)
        hint = (
            f" (pass dims=2 for a 2-D convolution over an {c}x{length} image)"
            if len(input_shape) == 2
            else ""
        )
        return f"Conv1d over {c} channel(s) of length {length}{hint}"

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
